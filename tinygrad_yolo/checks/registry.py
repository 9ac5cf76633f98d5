"""The registry of gradient-check cases: the single list that both the test
suite and `tinygrad-yolo gradcheck` walk.

A case is a function of ``p`` that draws its parameters with ``p(name, strategy)``
and its arrays with ``p.array(name, shape, kind)``, and returns ``(fn, inputs)``:

    @case("mul", covers=[elementwise.Mul])
    def mul(p):
        sa, sb = p("shapes", broadcastable_shapes())
        return (lambda a, b: a * b), [p.array("a", sa), p.array("b", sb)]

Under hypothesis ``p`` draws; to replay an example ``p`` holds fixed values:
``run_case("mul", shapes=((2, 3), (3,)), a_seed=1, b_seed=2)``.
"""
from dataclasses import dataclass, field

import numpy as np

from ..backend import to_device
from ..gradcheck import check_gradients
from .strategies import make_array, seeds

CASES = {}


@dataclass
class Case:
    name: str
    build: callable
    covers: tuple
    tolerances: dict = field(default_factory=dict)


def case(name, covers=(), **tolerances):
    """Register a gradient-check case; ``covers`` lists the Function classes it exercises."""
    def register(build):
        if name in CASES:
            raise ValueError(f"gradient-check case {name!r} is registered twice")
        CASES[name] = Case(name, build, tuple(covers), tolerances)
        return build
    return register


class Params:
    """Draws parameters through hypothesis, or replays fixed ones."""

    def __init__(self, draw=None, fixed=None):
        self._draw = draw
        self.values = dict(fixed or {})

    def __call__(self, name, strategy):
        if name not in self.values:
            if self._draw is None:
                raise KeyError(f"parameter {name!r} is needed to replay this case")
            self.values[name] = self._draw(strategy, label=name)
        return self.values[name]

    def array(self, name, shape, kind="normal"):
        return make_array(shape, kind, self(name + "_seed", seeds()))


def covered_functions():
    return {fn for c in CASES.values() for fn in c.covers}


def build_example(name, draw=None, **fixed):
    """(fn, arrays, params) for one example of case ``name``."""
    if name not in CASES:
        raise KeyError(f"no gradient-check case named {name!r}; known: {', '.join(sorted(CASES))}")
    p = Params(draw, fixed)
    fn, arrays = CASES[name].build(p)
    return fn, arrays, p.values


def check_example(name, fn, arrays, device="cpu", seed=0):
    """Gradient-check ``fn`` at float64 copies of ``arrays`` on ``device``."""
    from ..tensor import Tensor
    tensors = [Tensor(to_device(np.asarray(a, dtype=np.float64), device), requires_grad=True) for a in arrays]
    return check_gradients(fn, tensors, seed=seed, **CASES[name].tolerances)


def run_case(name, device="cpu", draw=None, **fixed):
    """Build and check one example; returns (GradcheckResult, params)."""
    fn, arrays, params = build_example(name, draw, **fixed)
    return check_example(name, fn, arrays, device), params


def repro_line(name, params, device="cpu"):
    """One line of Python that replays an example."""
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    dev = f", device={device!r}" if device != "cpu" else ""
    return f"from tinygrad_yolo.checks import run_case; print(run_case({name!r}{dev}, {args})[0])"
