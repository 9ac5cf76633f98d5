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
sums go through pairwise sums and BLAS dot products, per-channel factors are expanded
to whole (C, H*W) rows because NumPy's elementwise loops are ~3x slower when an operand
repeats one value along the inner axis, and the passes that follow one another run chunk
by chunk of samples (workspace.chunks) so that all but the first read from the cache. On CUDA
the per-channel dot, y = x̂·γ + β and dx are each one fused kernel (kernels/__init__.py).
"""
import numpy as np

from ..backend import array_module, cuda_kernels, device_of
from ..function import Function
from .workspace import chunks, scratch


def _channel_sum(a3):
    """Σ over axes 0 and 2 of (N, C, L): pairwise along the contiguous L axis, then over N."""
    return a3.sum(axis=2).sum(axis=0)


def _channel_dot(a3, b3):
    """Σ over axes 0 and 2 of a3 * b3 without materialising the product."""
    xp = array_module(a3)
    if xp is not np:
        return cuda_kernels().channel_dot_gpu(a3, b3)
    if a3.shape[2] >= 32:  # one BLAS dot per (n, c) row
        return np.matmul(a3[:, :, None, :], b3[:, :, :, None]).reshape(a3.shape[:2]).sum(axis=0)
    return np.einsum("ncl,ncl->c", a3, b3)


def _rows(v, length):
    """Per-channel values v (C,) shaped to broadcast against (N, C, L): on NumPy expanded to
    contiguous (C, L) rows (fast inner loops), on CUDA a cheap broadcast view."""
    xp = array_module(v)
    if xp is not np:
        return v[:, None]
    return np.ascontiguousarray(np.broadcast_to(v[:, None], (v.shape[0], length)))


def _chunks(a3):
    """Runs of samples of (N, C, L) ``a3`` that fit in the cache (workspace.chunks), so that the
    passes over one chunk after another read main memory once. On CUDA, one chunk: there every
    pass is a kernel launch, and the GPU has the bandwidth."""
    if array_module(a3) is not np:
        return [(0, a3.shape[0])]
    return chunks(a3.shape[0], a3.itemsize * a3.shape[1] * a3.shape[2])  # (a3[0] fails for N = 0)


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
        L = 1
        for side in x.shape[2:]:
            L *= side
        x3 = x.reshape(N, C, L)  # not -1: that can't be inferred when N or C is 0
        m = N * L
        self.shape, self.m, self.L = x.shape, m, L

        if self.training:
            if m <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                                 f"got input size {x.shape}")
            mean = _channel_sum(x3) / m
            # xc = x - mean, and Σ xc² chunk by chunk while each chunk is still in the cache
            xc, mean_rows, sum_sq = xp.empty(x3.shape, dtype=x.dtype), _rows(mean, L), 0
            for a, b in _chunks(x3):
                xp.subtract(x3[a:b], mean_rows, out=xc[a:b])
                sum_sq = sum_sq + _channel_dot(xc[a:b], xc[a:b])
            var = sum_sq / m  # biased: what normalises this batch
            if self.running_mean is not None:
                self.running_mean *= 1 - self.momentum
                self.running_mean += self.momentum * mean
            if self.running_var is not None:  # unbiased, as PyTorch stores it
                self.running_var *= 1 - self.momentum
                self.running_var += (self.momentum * m / (m - 1)) * var
            self.inv_std = 1 / xp.sqrt(var + self.eps)
            self.xc = xc
            scale, shift, src = weight * self.inv_std, bias, xc
        else:
            if self.running_mean is None or self.running_var is None:
                raise ValueError("batch_norm: running_mean and running_var are needed in eval mode")
            # a copy (C values): the running statistics stay the module's, updated in place by
            # the next training forward, and are not part of what this op saved
            mean = self.running_mean.astype(x.dtype, copy=True)
            self.inv_std = 1 / xp.sqrt(self.running_var.astype(x.dtype, copy=False) + self.eps)
            self.x3, self.mean = x3, mean
            scale = weight * self.inv_std
            shift, src = bias - mean * scale, x3
        self.weight = weight
        self.running_mean = self.running_var = None  # not saved for backward (see above)
        if xp is not np:  # the same, fused into one kernel
            return cuda_kernels().scale_shift_gpu(src, scale, shift).reshape(x.shape)
        y, scale_rows, shift_rows = np.empty(x3.shape, dtype=x.dtype), _rows(scale, L), _rows(shift, L)
        for a, b in _chunks(x3):  # y = src·scale + shift, one chunk at a time
            np.multiply(src[a:b], scale_rows, out=y[a:b])
            y[a:b] += shift_rows
        return y.reshape(x.shape)

    def backward(self, g):
        N, C = self.shape[:2]
        L = self.L
        g3 = g.reshape(N, C, L)
        xp = array_module(g)
        scale = self.weight * self.inv_std
        if self.training:
            sum_g = sum_gxc = 0
            for a, b in _chunks(g3):  # Σg and Σg·xc from one read of each chunk
                sum_g = sum_g + _channel_sum(g3[a:b])
                sum_gxc = sum_gxc + _channel_dot(g3[a:b], self.xc[a:b])
            dgamma = sum_gxc * self.inv_std  # Σ g·x̂
            dx = None
            if self.needs_input_grad[0]:
                # dx = scale·g - (xc · scale·inv_std²/m·Σ(g·xc) + scale/m·Σg)
                xc_scale = scale * self.inv_std * self.inv_std * (sum_gxc / self.m)
                const = scale * (sum_g / self.m)
                if xp is not np:  # one fused kernel
                    dx = cuda_kernels().batch_norm_dx_gpu(g3, self.xc, scale, xc_scale, const)
                else:
                    dx = np.empty(g3.shape, dtype=g3.dtype)
                    g_rows, xc_rows, const_rows = _rows(scale, L), _rows(xc_scale, L), _rows(const, L)
                    for a, b in _chunks(g3):
                        tmp = scratch("batch_norm.tmp", (b - a,) + g3.shape[1:], g3.dtype)
                        np.multiply(self.xc[a:b], xc_rows, out=tmp)
                        tmp += const_rows
                        np.multiply(g3[a:b], g_rows, out=dx[a:b])
                        dx[a:b] -= tmp
                dx = dx.reshape(self.shape)
        else:
            sum_g = _channel_sum(g3)
            dgamma = (_channel_dot(g3, self.x3) - self.mean * sum_g) * self.inv_std  # Σ g·(x - mean)·inv_std
            dx = (g3 * _rows(scale, L)).reshape(self.shape) if self.needs_input_grad[0] else None
        return (dx, dgamma if self.needs_input_grad[1] else None,
                sum_g if self.needs_input_grad[2] else None)
