"""Numeric gradient checking: analytic gradients from backward() against float64
central differences.

The scalar checked is L = sum(fn(*inputs) * v) for a fixed random v, so one
backward gives dL/dx for every input. Small inputs are checked element by
element; large ones along a few random directions d, comparing the directional
derivative <dL/dx, d> with (L(x + eps d) - L(x - eps d)) / 2 eps (Chainer's
check_backward does the same).

Inputs are checked in the layout they come in -- transposed, sliced with a step or
reversed, as ``x.T``, ``permute`` and strided slicing give them -- because ops must be
right for every layout: the backward runs on the input as given, and each perturbation
is written into the input array itself through an index (``data[i, j] = ...``), which
reaches the element whatever the strides (a ``reshape(-1)`` of a non-contiguous array
is a copy, and writes to it would never reach the input). The one exception are arrays
whose elements are not independent variables -- a broadcast view (stride 0), whose one
memory cell is many elements -- or that are read-only: the analytic gradient is still
taken at the array as given, and the perturbations go to a private copy.
"""
from dataclasses import dataclass

import numpy as np

from .backend import array_module, to_numpy
from .function import enable_grad, no_grad


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message names the worst element."""


@dataclass
class GradcheckResult:
    ok: bool
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    worst_input: int = -1  # index into ``inputs``
    worst_shape: tuple = ()
    worst_where: str = ""  # "index (0, 2)" or "random direction 1"
    analytic: float = 0.0
    numeric: float = 0.0
    n_checked: int = 0

    def message(self):
        return (f"gradient check failed for input {self.worst_input} (shape {self.worst_shape}) at "
                f"{self.worst_where}: analytic {self.analytic:.10g} vs numeric {self.numeric:.10g} "
                f"(abs err {self.max_abs_err:.3g}, rel err {self.max_rel_err:.3g})")


def _scalar(fn, inputs, v):
    with no_grad():
        out = fn(*inputs)
    return float((out.data * v).sum())


def check_gradients(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, max_elementwise=2048,
                    n_directions=4, seed=0):
    """Compare analytic and numeric gradients of ``fn`` for every input that
    requires grad; returns a GradcheckResult (``ok`` False on any mismatch)."""
    from .tensor import Tensor

    inputs = list(inputs)
    checked = _inputs_to_check(inputs)
    rng = np.random.default_rng(seed)
    xp, v, analytic = _analytic_gradients(fn, inputs, checked, rng)
    tally = _Tally(atol, rtol)
    for i in checked:
        given = inputs[i].data
        others = [inputs[k].data for k in range(len(inputs))
                  if k != i and isinstance(inputs[k], Tensor)]
        if not _perturbable(given, others):  # see the module docstring
            inputs[i].data = array_module(given).array(given, copy=True)
        data = inputs[i].data
        try:
            if data.size <= max_elementwise:
                comparisons = _elementwise(fn, inputs, v, data, analytic[i], eps)
            else:
                comparisons = _along_directions(fn, inputs, v, data, analytic[i], eps,
                                                n_directions, rng, xp)
            for where, a, n in comparisons:
                tally.add(i, tuple(inputs[i].shape), where, a, n)
        finally:
            inputs[i].data = given
    return tally.result


def _inputs_to_check(inputs):
    """The indices of the inputs that require grad; each must be float64."""
    from .tensor import Tensor

    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs (central differences are too coarse "
                            f"in lower precision), but input {i} is {inputs[i].dtype}; convert "
                            f"with .double()")
    return checked


def _analytic_gradients(fn, inputs, checked, rng):
    """One backward of L = sum(fn(*inputs) * v) for a random ``v``: returns the output's array
    module, ``v`` and {input index: dL/dinput as a NumPy array}."""
    from .tensor import Tensor

    with enable_grad():
        for i in checked:
            inputs[i].grad = None
        out = fn(*inputs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        xp = array_module(out.data)
        v = xp.asarray(rng.standard_normal(out.shape))
        if out.requires_grad:
            out.backward(Tensor(v.astype(out.dtype)))
    analytic = {i: (to_numpy(inputs[i].grad.data) if inputs[i].grad is not None
                    else np.zeros(inputs[i].shape)) for i in checked}
    return xp, v, analytic


def _elementwise(fn, inputs, v, data, analytic, eps):
    """(where, analytic, numeric) for every element of ``data``, perturbed in place."""
    for index in np.ndindex(*data.shape):  # an index into the array itself: any strides
        orig = data[index].item()
        data[index] = orig + eps
        f_plus = _scalar(fn, inputs, v)
        data[index] = orig - eps
        f_minus = _scalar(fn, inputs, v)
        data[index] = orig
        numeric = (f_plus - f_minus) / (2 * eps)
        yield f"index {tuple(int(k) for k in index)}", analytic[index], numeric


def _along_directions(fn, inputs, v, data, analytic, eps, n_directions, rng, xp):
    """(where, analytic, numeric) derivatives of L along ``n_directions`` random directions."""
    original = data.copy()
    for k in range(n_directions):
        d = xp.asarray(rng.standard_normal(data.shape))
        data[...] = original + eps * d
        f_plus = _scalar(fn, inputs, v)
        data[...] = original - eps * d
        f_minus = _scalar(fn, inputs, v)
        data[...] = original
        numeric = (f_plus - f_minus) / (2 * eps)
        yield f"random direction {k}", float((analytic * to_numpy(d)).sum()), numeric


class _Tally:
    """The comparisons so far: the largest errors, and the element furthest outside its
    tolerance ``atol + rtol * |numeric|`` (the one a failure message names)."""

    def __init__(self, atol, rtol):
        self.atol, self.rtol = atol, rtol
        self.result = GradcheckResult(ok=True)
        self.worst_ratio = -1.0

    def add(self, i, shape, where, analytic, numeric):
        result = self.result
        abs_err = abs(analytic - numeric)
        ratio = abs_err / (self.atol + self.rtol * abs(numeric))
        result.n_checked += 1
        result.max_abs_err = max(result.max_abs_err, abs_err)
        result.max_rel_err = max(result.max_rel_err, abs_err / max(abs(numeric), 1e-12))
        if ratio > 1:
            result.ok = False
        if ratio > self.worst_ratio:
            self.worst_ratio = ratio
            result.worst_input, result.worst_shape = i, shape
            result.worst_where = where
            result.analytic, result.numeric = float(analytic), float(numeric)


def _perturbable(a, others):
    """Whether ``a``'s elements can be perturbed one at a time in place: writable, each element
    in memory of its own (no zero or overlapping strides), and no memory shared with another
    input (whose value would move too)."""
    if not getattr(a.flags, "writeable", True):  # CuPy arrays have no such flag
        return False
    extent = a.itemsize  # bytes spanned by the axes seen so far, the smallest strides first
    for stride, n in sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1):
        if stride < extent:
            return False
        extent += stride * (n - 1)
    xp = array_module(a)
    return not any(array_module(o) is xp and xp.may_share_memory(a, o) for o in others)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, **kwargs):
    """``True`` when the analytic gradients of ``fn`` at ``inputs`` match float64
    central differences; otherwise raises GradcheckError naming the input, the
    worst index and the analytic and numeric values.

        x = tg.Tensor(np.random.randn(3, 4), requires_grad=True)   # float64
        tg.gradcheck(lambda x: (x * x).sum(axis=1), [x])
    """
    result = check_gradients(fn, inputs, eps=eps, atol=atol, rtol=rtol, **kwargs)
    if not result.ok:
        raise GradcheckError(result.message())
    return True
