"""2-D pooling on NCHW arrays: max, average, adaptive average.

A pooling window at output (oy, ox) covers input rows oy*sh - ph + r and columns
ox*sw - pw + s for r < kh, s < kw. For a fixed tap (r, s) those reads form one strided
slice of the (padded) input, so pooling is a short loop over taps, each a vectorised array
operation; within one tap no two outputs read the same pixel, so the backward's ``+=`` on a
strided slice never needs ``np.add.at``. On the CPU, max pooling splits into a pass over the
kw column taps and one over the kh rows (see MaxPool2d), and average pooling loops over the
kh*kw taps of a channels-last copy (H, W, N*C) whose rows stay long and contiguous whatever
the stride (see _channels_last). On CUDA, max pooling runs the kernels in kernels/.

Padding follows PyTorch: at most half the kernel, counting as -inf for max (it never wins)
and as 0 for average (count_include_pad=True: the divisor is always kh*kw).
"""
import numpy as np

from ..backend import array_module, cuda_kernels
from ..function import Function
from .fast.pool import _backward_maps, _channels_last, _forward_maps, _per_map_bytes, _to_nchw
from .geometry import int_pair, pool_geometry
from .workspace import chunks, scratch


def _tap(a, r, s, stride, out_hw):
    """The (Ho, Wo, N*C) strided slice of channels-last ``a`` read by kernel tap (r, s)."""
    (sh, sw), (Ho, Wo) = stride, out_hw
    return a[r:r + sh * (Ho - 1) + 1:sh, s:s + sw * (Wo - 1) + 1:sw]


class MaxPool2d(Function):
    """Max over each window; the gradient goes to the winner — the FIRST maximum in row-major
    window order on ties (as the CUDA kernel does). NaN propagates: the first NaN wins.

    On the CPU the max is separable: the max of a window is the max over its rows of each row's
    max. A horizontal pass takes the max over the kw column taps for every (padded) input row,
    then a vertical pass the max over the kh rows of those: kw + kh tap operations instead of
    kw*kh, on NCHW. The first maximum in row-major order is the first row holding the window's
    max, and within it the first column: exactly what the two passes' strict ">" pick. Backward
    routes the gradient back through the two choices in reverse.

    The input is first copied, padded, into its column phases (fast/phases.stride_phases) so that
    the horizontal taps are contiguous slices: NumPy runs a loop with a stride-2 inner axis ~3x
    slower than a contiguous one. All of it runs on a few maps at a time (workspace.chunks), so
    that the dozen passes over each chunk's temporaries read the cache, not main memory."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        (kh, kw), stride, padding, out_hw = pool_geometry("max_pool2d", x.shape, *self.args)
        self.x_shape, self.geometry = x.shape, ((kh, kw), stride, padding, out_hw)
        if array_module(x) is not np:
            kernels = cuda_kernels()
            y, self.argmax = kernels.max_pool2d_forward_gpu(x, (kh, kw), stride, padding)
            return y
        N, C, H, W = x.shape
        index = np.uint8 if max(kh, kw) <= 255 else np.int32
        maps = x.reshape(N * C, H, W)
        y = np.empty((N, C) + out_hw, dtype=x.dtype)
        y3 = y.reshape(N * C, *out_hw)
        self.col_won = np.empty((N * C, H + 2 * padding[0], out_hw[1]), dtype=index)  # horizontal choices
        self.row_won = np.empty(y3.shape, dtype=index)                                  # vertical choices
        # chunks of maps whose temporaries stay in the cache (workspace.chunks): the stem's pool
        # of a ResNet-18 step at batch 8 went from 25 to 10 ms forward, 29 to 15 ms backward
        for a, b in chunks(N * C, _per_map_bytes(H, W, padding, out_hw, x.itemsize)):
            _forward_maps(self.geometry, maps[a:b], y3[a:b], self.col_won[a:b], self.row_won[a:b])
        return y

    def backward(self, g):
        (kh, kw), stride, padding, out_hw = self.geometry
        if array_module(g) is not np:
            kernels = cuda_kernels()
            return kernels.max_pool2d_backward_gpu(g, self.argmax, self.x_shape, (kh, kw), stride, padding)
        N, C, H, W = self.x_shape
        gx = np.empty(self.x_shape, dtype=g.dtype)
        g3, gx3 = g.reshape(N * C, *out_hw), gx.reshape(N * C, H, W)
        for a, b in chunks(N * C, _per_map_bytes(H, W, padding, out_hw, g.itemsize)):
            _backward_maps(self.geometry, g3[a:b], self.col_won[a:b], self.row_won[a:b], gx3[a:b])
        return gx

class AvgPool2d(Function):
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        (kh, kw), stride, padding, out_hw = pool_geometry("avg_pool2d", x.shape, *self.args)
        self.x_shape, self.geometry = x.shape, ((kh, kw), stride, padding, out_hw)
        N, C = x.shape[:2]
        xpad = _channels_last("pool.x", x, padding, 0)
        acc = scratch("pool.y", out_hw + (N * C,), x.dtype, array_module(x))
        acc[...] = _tap(xpad, 0, 0, stride, out_hw)
        for t in range(1, kh * kw):
            acc += _tap(xpad, t // kw, t % kw, stride, out_hw)
        return _to_nchw(acc, (N, C) + out_hw, scale=1.0 / (kh * kw))

    def backward(self, g):
        (kh, kw), stride, padding, out_hw = self.geometry
        xp = array_module(g)
        N, C, H, W = self.x_shape
        (ph, pw) = padding
        share = scratch("pool.g", out_hw + (N, C), g.dtype, xp)
        xp.multiply(g.transpose(2, 3, 0, 1), 1.0 / (kh * kw), out=share)
        share = share.reshape(out_hw + (N * C,))
        gx = scratch("pool.gx", (H + 2 * ph, W + 2 * pw, N * C), g.dtype, xp)
        gx.fill(0)
        for t in range(kh * kw):
            view = _tap(gx, t // kw, t % kw, stride, out_hw)
            view += share
        return _to_nchw(gx[ph:ph + H, pw:pw + W], self.x_shape)


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
