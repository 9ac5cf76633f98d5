"""Worked lessons for `tinygrad-yolo demo conv` and `tinygrad-yolo demo batchnorm`: numbers small
enough to check by hand, every step computed by the textbook rule and compared with what the
engine's forward and backward() computed. Each lesson is one module with ``run(args) -> exit
code``; commands/demo.py chooses between them."""
import numpy as np

from ..viz import format_array


def fmt(a, precision=4):
    """An array or a number on one line, ``precision`` significant digits, no "-0"."""
    return format_array(np.asarray(a, dtype=np.float64), precision=precision, one_line=True)


def num(v):
    """One number as a student would write it: 2 not 2.0, 0.4 not 0.4000, no "-0"."""
    return f"{float(v) + 0.0:.4g}"


def times(a, b):
    """a*b written for reading: negative factors in parentheses, 1*(-2) not 1*-2."""
    return "*".join(num(v) if v >= 0 else f"({num(v)})" for v in (a, b))


def compare(label, by_hand, engine, show=True):
    """Print what the engine computed under a hand computation (``show``: its numbers too);
    return the largest difference."""
    diff = float(np.abs(np.asarray(by_hand) - np.asarray(engine)).max())
    same = "(the same)" if diff <= 1e-12 else f"DIFFERENT by {diff:.2e}"
    print(f"    {label:<26}" + (f"{fmt(engine)}   " if show else "") + same)
    return diff
