"""Numeric gradient checking: analytic gradients from backward() against float64
central differences.

The scalar checked is L = sum(fn(*inputs) * v) for a fixed random v, so one
backward gives dL/dx for every input. Small inputs are checked element by
element; large ones along a few random directions d, comparing the directional
derivative <dL/dx, d> with (L(x + eps d) - L(x - eps d)) / 2 eps (Chainer's
check_backward does the same).
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
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs (central differences are too coarse in "
                            f"lower precision), but input {i} is {inputs[i].dtype}; convert with .double()")
    for i in checked:  # perturbing in place needs a contiguous, writable array we own
        inputs[i].data = array_module(inputs[i].data).array(inputs[i].data, copy=True)

    rng = np.random.default_rng(seed)
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

    result = GradcheckResult(ok=True)
    worst_ratio = -1.0

    def record(i, where, a, n):
        nonlocal worst_ratio
        abs_err = abs(a - n)
        ratio = abs_err / (atol + rtol * abs(n))
        result.n_checked += 1
        result.max_abs_err = max(result.max_abs_err, abs_err)
        result.max_rel_err = max(result.max_rel_err, abs_err / max(abs(n), 1e-12))
        if ratio > 1:
            result.ok = False
        if ratio > worst_ratio:
            worst_ratio = ratio
            result.worst_input, result.worst_shape = i, tuple(inputs[i].shape)
            result.worst_where, result.analytic, result.numeric = where, float(a), float(n)

    for i in checked:
        data = inputs[i].data
        flat = data.reshape(-1)  # a view: writes perturb the input
        if data.size <= max_elementwise:
            for j in range(data.size):
                orig = flat[j].item()
                flat[j] = orig + eps
                f_plus = _scalar(fn, inputs, v)
                flat[j] = orig - eps
                f_minus = _scalar(fn, inputs, v)
                flat[j] = orig
                numeric = (f_plus - f_minus) / (2 * eps)
                index = np.unravel_index(j, data.shape)
                record(i, f"index {tuple(int(k) for k in index)}", analytic[i].reshape(-1)[j], numeric)
        else:
            original = data.copy()
            for k in range(n_directions):
                d = xp.asarray(rng.standard_normal(data.shape))
                data[...] = original + eps * d
                f_plus = _scalar(fn, inputs, v)
                data[...] = original - eps * d
                f_minus = _scalar(fn, inputs, v)
                data[...] = original
                numeric = (f_plus - f_minus) / (2 * eps)
                record(i, f"random direction {k}", float((analytic[i] * to_numpy(d)).sum()), numeric)
    return result


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
