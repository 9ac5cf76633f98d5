"""``tg.nn.utils``: gradient clipping with PyTorch's names and semantics."""
import math

import numpy as np

from ..backend import array_module
from ..saved import modifying
from ..tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected Tensors (parameters), got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad.data)
    return grads


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of ``parameters`` in place so that their norm, taken over all of
    them as one vector, is at most ``max_norm``; returns that norm before clipping (a 0-d
    Tensor). As in PyTorch the scale is max_norm / (norm + 1e-6) and is only applied when it is
    below 1; ``norm_type`` may be ``float('inf')`` (the largest magnitude). Parameters without
    a gradient are skipped."""
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    xp = array_module(grads[0])
    if math.isinf(norm_type):
        total = max(float(xp.abs(g).max()) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:  # a dot product per gradient: no |g|² temporary
        total = math.sqrt(sum(float(xp.vdot(g.ravel(), g.ravel())) for g in grads))
    else:
        total = sum(float((xp.abs(g) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}; "
                           "pass error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            with modifying(g):
                g *= g.dtype.type(scale)
    return Tensor(xp.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient of ``parameters`` into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        with modifying(g):
            array_module(g).clip(g, -clip_value, clip_value, out=g)
