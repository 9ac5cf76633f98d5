"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019) with PyTorch's formulas.

For step t (from 1), gradient g of parameter p:

    g = g + weight_decay * p                (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)         (AdamW: decoupled decay, g unchanged)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
import math

from .. import backend, dispatch
from ..function import no_grad
from ..saved import modifying
from .optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"invalid Adam hyper-parameters lr={lr}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params,
                         dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @no_grad()
    def step(self):
        for group in self.param_groups:
            lr, betas, eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, state in self._params_with_grad(group):
                path = dispatch.optimizer_path(p.data)  # one CUDA kernel, or adam_update below
                update = dispatch.resolve(dispatch.ADAM_UPDATE, path)
                update(p, state, lr, betas, eps, wd, self._decoupled)


def adam_update(p, state, lr, betas, eps, weight_decay, decoupled):
    """One Adam step of parameter p in place (AdamW's when ``decoupled``), its moments and step
    count in ``state``."""
    (b1, b2), g = betas, p.grad.data
    if weight_decay != 0:
        if decoupled:
            with modifying(p.data):  # a graph still holding p fails at its backward
                p.data *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p.data
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
