"""Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

PyTorch's update, for gradient g of parameter p:

    g = g + weight_decay * p
    b = g                                   (first step)
    b = momentum * b + (1 - dampening) * g  (later steps)
    g = g + momentum * b  if nesterov  else  b
    p = p - lr * g
"""
from .. import dispatch
from ..backend import array_module
from ..function import no_grad
from ..saved import modifying
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if momentum < 0:
            raise ValueError(f"invalid momentum {momentum}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight_decay {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))

    @no_grad()
    def step(self):
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p, state in self._params_with_grad(group):
                path = dispatch.optimizer_path(p.data)  # one CUDA kernel, or sgd_update below
                update = dispatch.resolve(dispatch.SGD_UPDATE, path)
                update(p, state, lr, mom, damp, nesterov, wd)


def sgd_update(p, state, lr, momentum, dampening, nesterov, weight_decay):
    """One SGD step of parameter p in place, its momentum buffer in ``state``. In place where
    the arrays are ours, one temporary per parameter: this runs over every weight each step (12M
    floats for ResNet-18), so passes and allocations count."""
    g, tmp = p.grad.data, None
    if weight_decay != 0:
        tmp = p.data * weight_decay
        tmp += g
        g = tmp
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.copy()
        else:
            buf *= momentum
            if dampening:
                buf += (1 - dampening) * g
            else:
                buf += g
        g = g + momentum * buf if nesterov else buf
    if tmp is None:
        tmp = g * lr
    else:  # g may be tmp itself: an in-place multiply is fine either way
        array_module(tmp).multiply(g, lr, out=tmp)
    with modifying(p.data):  # a graph still holding p fails at its backward, as in PyTorch
        p.data -= tmp
