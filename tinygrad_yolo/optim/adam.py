"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019) with PyTorch's formulas.

For step t (from 1), gradient g of parameter p:

    g = g + weight_decay * p                (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)         (AdamW: decoupled decay, g unchanged)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
import math

from .. import backend
from ..function import modifying, no_grad
from ..cuda import optim as fused
from .optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"invalid Adam hyper-parameters lr={lr}, eps={eps}, weight_decay={weight_decay}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, state in self._params_with_grad(group):
                if backend.is_cuda_array(p.data):  # one kernel (cuda/optim.py)
                    fused.adam_step(p, state, lr, (b1, b2), eps, wd, self._decoupled)
                    continue
                g = p.grad.data
                if wd != 0:
                    if self._decoupled:
                        with modifying(p.data):  # a graph still holding p fails at its backward
                            p.data *= 1 - lr * wd
                    else:
                        g = g + wd * p.data
                if not state:
                    xp = backend.array_module(p.data)
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * (g * g)
                step_size = lr / (1 - b1 ** t)
                denom = backend.array_module(v).sqrt(v) / math.sqrt(1 - b2 ** t) + eps
                with modifying(p.data):
                    p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2, as PyTorch)."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
