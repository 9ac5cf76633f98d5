"""2-D pooling on NCHW arrays: max, average, adaptive average.

A pooling window at output (oy, ox) covers input rows oy*sh - ph + r and columns
ox*sw - pw + s for r < kh, s < kw. For a fixed tap (r, s) those reads form one strided
slice of the (padded) input, so every op here is a short loop over the kh*kw taps, each a
vectorised array operation — and within one tap no two outputs read the same pixel, so
the backward's ``+=`` on a strided slice never needs ``np.add.at``.

Padding follows PyTorch: at most half the kernel, counting as -inf for max (it never wins)
and as 0 for average (count_include_pad=True: the divisor is always kh*kw).
"""
import numpy as np

from ..backend import array_module
from ..function import Function
from .im2col import conv_output_size, pair
from .workspace import scratch


def pool_geometry(op, x_shape, kernel_size, stride, padding):
    """Validate; return (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-d (N, C, H, W), got shape {tuple(x_shape)}")
    (kh, kw) = pair(kernel_size)
    (sh, sw) = pair(kernel_size if stride is None else stride)
    (ph, pw) = pair(padding)
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{op}: kernel size and stride must be >= 1 and padding >= 0, got kernel "
                         f"{(kh, kw)}, stride {(sh, sw)}, padding {(ph, pw)}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{op}: padding {(ph, pw)} must be at most half the kernel size {(kh, kw)}")
    H, W = x_shape[2:]
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(f"{op}: kernel {kh}x{kw} is larger than the padded input "
                         f"{H + 2 * ph}x{W + 2 * pw} (input shape {tuple(x_shape)}, padding {(ph, pw)})")
    Ho, Wo = conv_output_size(H, kh, sh, ph, 1), conv_output_size(W, kw, sw, pw, 1)
    return (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)


def _tap(a, r, s, stride, out_hw):
    """The (N, C, Ho, Wo) strided slice of padded ``a`` read by kernel tap (r, s)."""
    (sh, sw), (Ho, Wo) = stride, out_hw
    return a[:, :, r:r + sh * (Ho - 1) + 1:sh, s:s + sw * (Wo - 1) + 1:sw]


def _padded(name, x, padding, value):
    """x with ``padding`` rows/columns of ``value`` around each image (x itself when none)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = array_module(x)
    N, C, H, W = x.shape
    buf = scratch(name, (N, C, H + 2 * ph, W + 2 * pw), x.dtype, xp)
    buf.fill(value)  # borders only would be less traffic, but pooled maps are small
    buf[:, :, ph:ph + H, pw:pw + W] = x
    return buf


def _gradient_canvas(name, x_shape, padding, dtype, xp):
    """Zeroed array for the input gradient, padded like the input. Without padding it is the
    fresh gradient itself; with padding a scratch buffer whose interior gets copied out."""
    ph, pw = padding
    N, C, H, W = x_shape
    if ph == 0 and pw == 0:
        return xp.zeros(x_shape, dtype=dtype)
    buf = scratch(name, (N, C, H + 2 * ph, W + 2 * pw), dtype, xp)
    buf.fill(0)
    return buf


def _crop(canvas, x_shape, padding):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return canvas
    H, W = x_shape[2:]
    return canvas[:, :, ph:ph + H, pw:pw + W].copy()  # a fresh array: the engine keeps it


class MaxPool2d(Function):
    """Max over each window; the gradient goes to the winner — the FIRST maximum in row-major
    window order on ties (as the CUDA kernel does). NaN propagates: the first NaN wins."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        (kh, kw), stride, padding, out_hw = pool_geometry("max_pool2d", x.shape, *self.args)
        self.x_shape, self.geometry = x.shape, ((kh, kw), stride, padding, out_hw)
        xp = array_module(x)
        if xp is not np:
            from .. import kernels
            y, self.argmax = kernels.max_pool2d_forward_gpu(x, (kh, kw), stride, padding)
            return y
        xpad = _padded("pool.x", x, padding, -np.inf)
        y = _tap(xpad, 0, 0, stride, out_hw).copy()
        # argmax holds the winning tap's number r*kw + s (small ints: less memory traffic).
        argmax = np.zeros(y.shape, dtype=np.uint8 if kh * kw <= 256 else np.int32)
        has_nan = bool(np.isnan(x).any()) if x.dtype.kind == "f" else False
        wins = np.empty(y.shape, dtype=bool)
        for t in range(1, kh * kw):
            v = _tap(xpad, t // kw, t % kw, stride, out_hw)
            np.greater(v, y, out=wins)  # strict: an equal value later in the window loses
            if has_nan:  # a NaN beats a number; the first NaN stays
                wins |= np.isnan(v) & ~np.isnan(y)
            np.copyto(y, v, where=wins)
            np.copyto(argmax, t, where=wins)
        self.argmax = argmax
        return y

    def backward(self, g):
        (kh, kw), stride, padding, out_hw = self.geometry
        xp = array_module(g)
        if xp is not np:
            from .. import kernels
            return kernels.max_pool2d_backward_gpu(g, self.argmax, self.x_shape, (kh, kw), stride, padding)
        gx = _gradient_canvas("pool.gx", self.x_shape, padding, g.dtype, xp)
        for t in range(kh * kw):
            _tap(gx, t // kw, t % kw, stride, out_hw)[...] += np.where(self.argmax == t, g, 0)
        return _crop(gx, self.x_shape, padding)


class AvgPool2d(Function):
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        (kh, kw), stride, padding, out_hw = pool_geometry("avg_pool2d", x.shape, *self.args)
        self.x_shape, self.geometry = x.shape, ((kh, kw), stride, padding, out_hw)
        xpad = _padded("pool.x", x, padding, 0)
        y = _tap(xpad, 0, 0, stride, out_hw).copy()
        for t in range(1, kh * kw):
            y += _tap(xpad, t // kw, t % kw, stride, out_hw)
        y *= 1.0 / (kh * kw)
        return y

    def backward(self, g):
        (kh, kw), stride, padding, out_hw = self.geometry
        xp = array_module(g)
        gx = _gradient_canvas("pool.gx", self.x_shape, padding, g.dtype, xp)
        share = g * (1.0 / (kh * kw))
        for t in range(kh * kw):
            _tap(gx, t // kw, t % kw, stride, out_hw)[...] += share
        return _crop(gx, self.x_shape, padding)


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
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"expected an int or a (h, w) pair, got {v!r}")
        return tuple(None if a is None else int(a) for a in v)
    return int(v), int(v)
