"""2-D pooling on NCHW arrays: max, average, adaptive average.

A pooling window at output (oy, ox) covers input rows oy*sh - ph + r and columns
ox*sw - pw + s for r < kh, s < kw (ops/geometry.py checks the arguments and computes Ho, Wo):

    max:      y[n, c, oy, ox] = max over the window of x;  the gradient goes to the winner
    average:  y[n, c, oy, ox] = (sum over the window of x) / (kh*kw);  each pixel gets g / (kh*kw)

For a fixed tap (r, s) the reads form one strided slice of the (padded) input, so pooling is a
short loop over taps, each a vectorised array operation; within one tap no two outputs read
the same pixel, so the backward's ``+=`` on a strided slice never needs ``np.add.at``.
AvgPool2d below is that loop. Max pooling on the CPU runs as two separable passes over chunks
of maps (ops/fast/pool.py), on CUDA as the kernels in kernels/.

Padding follows PyTorch: at most half the kernel, counting as -inf for max (it never wins)
and as 0 for average (count_include_pad=True: the divisor is always kh*kw).
"""
import numpy as np

from ..backend import array_module, cuda_kernels
from ..function import Function
from .fast.pool import channels_last, max_pool_backward, max_pool_forward, to_nchw
from .geometry import int_pair, pool_window
from .fast.workspace import scratch


def _tap(a, r, s, g):
    """The (Ho, Wo, N*C) strided slice of channels-last ``a`` read by kernel tap (r, s)."""
    return a[r:r + g.sh * (g.Ho - 1) + 1:g.sh, s:s + g.sw * (g.Wo - 1) + 1:g.sw]


class MaxPool2d(Function):
    """Max over each window; the gradient goes to the winner — the FIRST maximum in row-major
    window order on ties (as the CUDA kernel does). NaN propagates: the first NaN wins."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        self.window = g = pool_window("max_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        if array_module(x) is not np:
            y, self.argmax = cuda_kernels().max_pool2d_forward_gpu(x, g)
            return y
        y, self.col_won, self.row_won = max_pool_forward(x, g)  # the two passes' choices
        return y

    def backward(self, gy):
        if array_module(gy) is not np:
            return cuda_kernels().max_pool2d_backward_gpu(gy, self.argmax, self.x_shape, self.window)
        return max_pool_backward(gy, self.col_won, self.row_won, self.x_shape, self.window)


class AvgPool2d(Function):
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True).
    The taps run over a channels-last copy (H, W, N*C) whose rows stay long and contiguous
    whatever the stride (fast/pool.channels_last)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        self.window = g = pool_window("avg_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        N, C = x.shape[:2]
        xpad = channels_last("pool.x", x, g.padding, 0)
        acc = scratch("pool.y", g.out_hw + (N * C,), x.dtype, array_module(x))
        acc[...] = _tap(xpad, 0, 0, g)
        for t in range(1, g.kh * g.kw):
            acc += _tap(xpad, t // g.kw, t % g.kw, g)
        return to_nchw(acc, (N, C) + g.out_hw, scale=1.0 / (g.kh * g.kw))

    def backward(self, gy):
        g, xp = self.window, array_module(gy)
        N, C, H, W = self.x_shape
        share = scratch("pool.g", g.out_hw + (N, C), gy.dtype, xp)
        xp.multiply(gy.transpose(2, 3, 0, 1), 1.0 / (g.kh * g.kw), out=share)
        share = share.reshape(g.out_hw + (N * C,))
        gx = scratch("pool.gx", (H + 2 * g.ph, W + 2 * g.pw, N * C), gy.dtype, xp)
        gx.fill(0)
        for t in range(g.kh * g.kw):
            view = _tap(gx, t // g.kw, t % g.kw, g)
            view += share
        return to_nchw(gx[g.ph:g.ph + H, g.pw:g.pw + W], self.x_shape)


def adaptive_bins(size, out):
    """PyTorch's bins: output i averages input [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    """Average over ``output_size`` bins that tile the input (bins may overlap by one pixel when
    the sizes don't divide). output_size 1 is the global average pool."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"adaptive_avg_pool2d: input must be 4-d (N, C, H, W), got shape {x.shape}")
        N, C, H, W = x.shape
        Ho, Wo = (H if o is None else o for o in _pair_or_none(self.output_size))
        if Ho < 1 or Wo < 1:
            raise ValueError(f"adaptive_avg_pool2d: output size must be >= 1, got {(Ho, Wo)}")
        self.x_shape = x.shape
        xp = array_module(x)
        if (Ho, Wo) == (1, 1):
            self.bins = None
            return x.mean(axis=(2, 3), keepdims=True)
        self.bins = adaptive_bins(H, Ho), adaptive_bins(W, Wo)
        y = xp.empty((N, C, Ho, Wo), dtype=x.dtype)
        for i, (h0, h1) in enumerate(self.bins[0]):
            for j, (w0, w1) in enumerate(self.bins[1]):
                y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        return y

    def backward(self, g):
        xp = array_module(g)
        N, C, H, W = self.x_shape
        if self.bins is None:
            gx = xp.empty(self.x_shape, dtype=g.dtype)  # a real array, not a broadcast view:
            gx[...] = g * (1.0 / (H * W))                # the engine may add into it in place
            return gx
        gx = xp.zeros(self.x_shape, dtype=g.dtype)
        for i, (h0, h1) in enumerate(self.bins[0]):
            for j, (w0, w1) in enumerate(self.bins[1]):
                gx[:, :, h0:h1, w0:w1] += g[:, :, i:i + 1, j:j + 1] * (1.0 / ((h1 - h0) * (w1 - w0)))
        return gx


def _pair_or_none(v):
    """output_size: an int, or a pair of ints or None (None keeps that side)."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) == 2 and None in items:
        return tuple(None if a is None else int_pair(a, "output_size", "adaptive_avg_pool2d")[0] for a in items)
    return int_pair(v, "output_size", "adaptive_avg_pool2d")
