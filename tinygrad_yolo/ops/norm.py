"""Batch normalisation as one fused op (forward and the compact backward side by side).

Per channel c, over the m = N*H*W values of a batch (x of shape (N, C) or (N, C, H, W)):

    training:  mean, var = batch mean and biased variance;  x̂ = (x - mean) / sqrt(var + eps)
               running stats <- (1 - momentum) * running + momentum * (mean, var * m / (m - 1))
    eval:      mean, var = the running statistics
    y = γ x̂ + β

Backward in training mode, the three paths through x (directly, via the mean, via the
variance) collapse into one expression (Ioffe & Szegedy 2015, rearranged):

    dβ = Σ g      dγ = Σ g·x̂      dx = (γ / sqrt(var + eps)) · (g - dβ/m - x̂ · dγ/m)

This is the hottest elementwise op in a ResNet, so it is written for few passes over memory:
the centred input xc = x - mean is the only array saved (x̂ = xc · inv_std), per-channel
sums go through pairwise sums and BLAS dot products, and per-channel factors are expanded
to whole (C, H*W) rows because NumPy's elementwise loops are ~3x slower when an operand
repeats one value along the inner axis.
"""
import numpy as np

from ..backend import array_module, device_of
from ..function import Function
from .workspace import scratch


def _channel_sum(a3):
    """Σ over axes 0 and 2 of (N, C, L): pairwise along the contiguous L axis, then over N."""
    return a3.sum(axis=2).sum(axis=0)


def _channel_dot(a3, b3):
    """Σ over axes 0 and 2 of a3 * b3 without materialising the product."""
    xp = array_module(a3)
    if xp is np and a3.shape[2] >= 32:  # one BLAS dot per (n, c) row
        return xp.matmul(a3[:, :, None, :], b3[:, :, :, None]).reshape(a3.shape[:2]).sum(axis=0)
    return xp.einsum("ncl,ncl->c", a3, b3)


def _rows(v, length):
    """Per-channel values v (C,) shaped to broadcast against (N, C, L): on NumPy expanded to
    contiguous (C, L) rows (fast inner loops), on CUDA a cheap broadcast view."""
    xp = array_module(v)
    if xp is not np:
        return v[:, None]
    return np.ascontiguousarray(np.broadcast_to(v[:, None], (v.shape[0], length)))


class BatchNorm(Function):
    """Inputs (x, weight, bias). Running statistics are arrays updated in place (training) or
    read (eval); they are not graph inputs."""

    def __init__(self, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = bool(training), momentum, eps

    def forward(self, x, weight, bias):
        xp = array_module(x)
        if x.ndim < 2:
            raise ValueError(f"batch_norm: input must be (N, C) or (N, C, H, W), got shape {x.shape}")
        N, C = x.shape[:2]
        for name, a in (("weight", weight), ("bias", bias), ("running_mean", self.running_mean),
                        ("running_var", self.running_var)):
            if a is not None and tuple(a.shape) != (C,):
                raise ValueError(f"batch_norm: {name} must have shape ({C},) for input {x.shape}, "
                                 f"got {tuple(a.shape)}")
            if a is not None and device_of(a) != device_of(x):
                raise RuntimeError(f"batch_norm: {name} is on {device_of(a)} but the input is on "
                                   f"{device_of(x)}")
        x3 = x.reshape(N, C, -1)
        m = N * x3.shape[2]
        self.shape, self.m = x.shape, m

        if self.training:
            if m <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                                 f"got input size {x.shape}")
            mean = _channel_sum(x3) / m
            xc = x3 - _rows(mean, x3.shape[2])
            var = _channel_dot(xc, xc) / m  # biased: what normalises this batch
            if self.running_mean is not None:
                self.running_mean *= 1 - self.momentum
                self.running_mean += self.momentum * mean
            if self.running_var is not None:  # unbiased, as PyTorch stores it
                self.running_var *= 1 - self.momentum
                self.running_var += (self.momentum * m / (m - 1)) * var
            self.inv_std = 1 / xp.sqrt(var + self.eps)
            self.xc = xc
            scale, shift = weight * self.inv_std, bias
            y = xc * _rows(scale, x3.shape[2])
        else:
            if self.running_mean is None or self.running_var is None:
                raise ValueError("batch_norm: running_mean and running_var are needed in eval mode")
            mean = self.running_mean.astype(x.dtype, copy=False)
            self.inv_std = 1 / xp.sqrt(self.running_var.astype(x.dtype, copy=False) + self.eps)
            self.x3, self.mean = x3, mean
            scale = weight * self.inv_std
            shift = bias - mean * scale
            y = x3 * _rows(scale, x3.shape[2])
        y += _rows(shift, x3.shape[2])
        self.weight = weight
        return y.reshape(x.shape)

    def backward(self, g):
        N, C = self.shape[:2]
        g3 = g.reshape(N, C, -1)
        L = g3.shape[2]
        sum_g = _channel_sum(g3)
        scale = self.weight * self.inv_std
        if self.training:
            sum_gxc = _channel_dot(g3, self.xc)
            dgamma = sum_gxc * self.inv_std  # Σ g·x̂
            dx = None
            if self.needs_input_grad[0]:
                # dx = scale·g - scale/m·Σg - xc · scale·inv_std²/m·Σ(g·xc)
                xp = array_module(g)
                dx = g3 * _rows(scale, L)
                dx -= _rows(scale * (sum_g / self.m), L)
                tmp = scratch("batch_norm.tmp", g3.shape, g3.dtype, xp)
                xp.multiply(self.xc, _rows(scale * self.inv_std * self.inv_std * (sum_gxc / self.m), L), out=tmp)
                dx -= tmp
                dx = dx.reshape(self.shape)
        else:
            dgamma = (_channel_dot(g3, self.x3) - self.mean * sum_g) * self.inv_std  # Σ g·(x - mean)·inv_std
            dx = (g3 * _rows(scale, L)).reshape(self.shape) if self.needs_input_grad[0] else None
        return (dx, dgamma if self.needs_input_grad[1] else None,
                sum_g if self.needs_input_grad[2] else None)
