"""Batch norm's CPU path, ChunkedBatchNorm: the reference's formulas (tinygrad_yolo/ops/norm.py)
written for few trips through memory.

The centred input xc = x - mean is the only activation-sized array saved (x̂ = xc · inv_std).
Per-channel sums go through pairwise sums and BLAS dot products; per-channel factors are
expanded to whole (C, L) rows because NumPy's elementwise loops are ~3x slower when an operand
repeats one value along the inner axis; and passes that follow one another run chunk by chunk
of samples (workspace.chunks), so that all but the first read from the cache. All arrays are
(N, C, L): samples, channels, pixels.
"""
import numpy as np

from ..norm import BatchNorm, check_batch_norm
from .workspace import chunks, scratch


class ChunkedBatchNorm(BatchNorm):
    """BatchNorm in chunked passes: y = src·scale + shift with src the centred input (training)
    or the input itself (eval)."""

    def forward(self, x, weight, bias):
        N, C, L = check_batch_norm(x, weight, bias, self.running_mean, self.running_var,
                                   self.training)
        x3 = x.reshape(N, C, L)  # not -1: that can't be inferred when N or C is 0
        m = N * L
        self.shape, self.m, self.L = x.shape, m, L
        if self.training:
            mean = channel_sum(x3) / m
            xc, sum_sq = centre(x3, mean)
            var = sum_sq / m  # biased: what normalises this batch
            self.update_running_stats(mean, var, m)
            self.inv_std = 1 / np.sqrt(var + self.eps)
            self.xc = xc
            scale, shift, src = weight * self.inv_std, bias, xc  # y = xc·(γ·inv_std) + β
        else:
            # a copy (C values): the running statistics stay the module's, updated in place by
            # the next training forward, and are not part of what this op saved
            mean = self.running_mean.astype(x.dtype, copy=True)
            self.inv_std = 1 / np.sqrt(self.running_var.astype(x.dtype, copy=False) + self.eps)
            self.x3, self.mean = x3, mean
            scale = weight * self.inv_std
            shift, src = bias - mean * scale, x3  # y = x·(γ·inv_std) + (β - mean·γ·inv_std)
        self.weight = weight
        self.running_mean = self.running_var = None  # not saved for backward (see above)
        return scale_shift(src, scale, shift).reshape(x.shape)

    def backward(self, gy):
        N, C = self.shape[:2]
        g3 = gy.reshape(N, C, self.L)
        scale = self.weight * self.inv_std
        if self.training:
            sum_g, sum_gxc = sums(g3, self.xc)
            dgamma = sum_gxc * self.inv_std  # Σ g·x̂
            dx = None
            if self.needs_input_grad[0]:
                # dx = scale·g - (xc · scale·inv_std²/m·Σ(g·xc) + scale/m·Σg)
                xc_scale = scale * self.inv_std * self.inv_std * (sum_gxc / self.m)
                const = scale * (sum_g / self.m)
                dx = training_dx(g3, self.xc, scale, xc_scale, const).reshape(self.shape)
        else:
            sum_g = channel_sum(g3)
            # Σ g·(x - mean)·inv_std
            dgamma = (channel_dot(g3, self.x3) - self.mean * sum_g) * self.inv_std
            dx = None
            if self.needs_input_grad[0]:
                dx = (g3 * rows(scale, self.L)).reshape(self.shape)
        return (dx, dgamma if self.needs_input_grad[1] else None,
                sum_g if self.needs_input_grad[2] else None)


def channel_sum(a3):
    """Σ over axes 0 and 2 of (N, C, L): pairwise along the contiguous L axis, then over N."""
    return a3.sum(axis=2).sum(axis=0)


def channel_dot(a3, b3):
    """Σ over axes 0 and 2 of a3 * b3 without materialising the product."""
    if a3.shape[2] >= 32:  # one BLAS dot per (n, c) row
        return np.matmul(a3[:, :, None, :], b3[:, :, :, None]).reshape(a3.shape[:2]).sum(axis=0)
    return np.einsum("ncl,ncl->c", a3, b3)


def rows(v, length):
    """Per-channel values v (C,) expanded to contiguous (C, L) rows, to broadcast against
    (N, C, L) with fast inner loops."""
    return np.ascontiguousarray(np.broadcast_to(v[:, None], (v.shape[0], length)))


def sample_chunks(a3):
    """Runs of samples of (N, C, L) ``a3`` that fit in the cache (workspace.chunks), so that the
    passes over one chunk after another read main memory once."""
    return chunks(a3.shape[0], a3.itemsize * a3.shape[1] * a3.shape[2])  # (a3[0] fails for N = 0)


def centre(x3, mean):
    """(xc = x - mean, Σ xc² per channel), the sum taken chunk by chunk while xc is in the cache."""
    xc, mean_rows, sum_sq = np.empty(x3.shape, dtype=x3.dtype), rows(mean, x3.shape[2]), 0
    for a, b in sample_chunks(x3):
        np.subtract(x3[a:b], mean_rows, out=xc[a:b])
        sum_sq = sum_sq + channel_dot(xc[a:b], xc[a:b])
    return xc, sum_sq


def scale_shift(src, scale, shift):
    """src · scale[c] + shift[c], a fresh array."""
    L = src.shape[2]
    y, scale_rows, shift_rows = np.empty(src.shape, dtype=src.dtype), rows(scale, L), rows(shift, L)
    for a, b in sample_chunks(src):
        np.multiply(src[a:b], scale_rows, out=y[a:b])
        y[a:b] += shift_rows
    return y


def sums(g3, xc):
    """(Σ g, Σ g·xc) per channel, from one read of each chunk."""
    sum_g = sum_gxc = 0
    for a, b in sample_chunks(g3):
        sum_g = sum_g + channel_sum(g3[a:b])
        sum_gxc = sum_gxc + channel_dot(g3[a:b], xc[a:b])
    return sum_g, sum_gxc


def training_dx(g3, xc, g_scale, xc_scale, const):
    """dx = g·g_scale[c] - (xc·xc_scale[c] + const[c])."""
    L = g3.shape[2]
    dx = np.empty(g3.shape, dtype=g3.dtype)
    g_rows, xc_rows, const_rows = rows(g_scale, L), rows(xc_scale, L), rows(const, L)
    for a, b in sample_chunks(g3):
        tmp = scratch("batch_norm.tmp", (b - a,) + g3.shape[1:], g3.dtype)
        np.multiply(xc[a:b], xc_rows, out=tmp)
        tmp += const_rows
        np.multiply(g3[a:b], g_rows, out=dx[a:b])
        dx[a:b] -= tmp
    return dx
