"""Batch norm's passes, written for few trips through memory (tinygrad_yolo/ops/norm.py says what
they compute).

Per-channel sums go through pairwise sums and BLAS dot products; per-channel factors are
expanded to whole (C, L) rows because NumPy's elementwise loops are ~3x slower when an operand
repeats one value along the inner axis; and passes that follow one another run chunk by chunk
of samples (workspace.chunks), so that all but the first read from the cache. On CUDA the
per-channel dot, y = x·scale + shift and dx are each one fused kernel (kernels/__init__.py).
All arrays are (N, C, L): samples, channels, pixels.
"""
import numpy as np

from ...backend import array_module, cuda_kernels
from .workspace import chunks, scratch


def channel_sum(a3):
    """Σ over axes 0 and 2 of (N, C, L): pairwise along the contiguous L axis, then over N."""
    return a3.sum(axis=2).sum(axis=0)


def channel_dot(a3, b3):
    """Σ over axes 0 and 2 of a3 * b3 without materialising the product."""
    xp = array_module(a3)
    if xp is not np:
        return cuda_kernels().channel_dot_gpu(a3, b3)
    if a3.shape[2] >= 32:  # one BLAS dot per (n, c) row
        return np.matmul(a3[:, :, None, :], b3[:, :, :, None]).reshape(a3.shape[:2]).sum(axis=0)
    return np.einsum("ncl,ncl->c", a3, b3)


def rows(v, length):
    """Per-channel values v (C,) shaped to broadcast against (N, C, L): on NumPy expanded to
    contiguous (C, L) rows (fast inner loops), on CUDA a cheap broadcast view."""
    xp = array_module(v)
    if xp is not np:
        return v[:, None]
    return np.ascontiguousarray(np.broadcast_to(v[:, None], (v.shape[0], length)))


def sample_chunks(a3):
    """Runs of samples of (N, C, L) ``a3`` that fit in the cache (workspace.chunks), so that the
    passes over one chunk after another read main memory once. On CUDA, one chunk: there every
    pass is a kernel launch, and the GPU has the bandwidth."""
    if array_module(a3) is not np:
        return [(0, a3.shape[0])]
    return chunks(a3.shape[0], a3.itemsize * a3.shape[1] * a3.shape[2])  # (a3[0] fails for N = 0)


def centre(x3, mean):
    """(xc = x - mean, Σ xc² per channel), the sum taken chunk by chunk while xc is in the cache."""
    xp = array_module(x3)
    xc, mean_rows, sum_sq = xp.empty(x3.shape, dtype=x3.dtype), rows(mean, x3.shape[2]), 0
    for a, b in sample_chunks(x3):
        xp.subtract(x3[a:b], mean_rows, out=xc[a:b])
        sum_sq = sum_sq + channel_dot(xc[a:b], xc[a:b])
    return xc, sum_sq


def scale_shift(src, scale, shift):
    """src · scale[c] + shift[c], a fresh array."""
    if array_module(src) is not np:  # one fused kernel
        return cuda_kernels().scale_shift_gpu(src, scale, shift)
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
    if array_module(g3) is not np:  # one fused kernel
        return cuda_kernels().batch_norm_dx_gpu(g3, xc, g_scale, xc_scale, const)
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
