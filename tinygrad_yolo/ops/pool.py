"""2-D pooling on NCHW arrays: max, average, adaptive average.

A pooling window at output (oy, ox) covers input rows oy*sh - ph + r and columns
ox*sw - pw + s for r < kh, s < kw (ops/geometry.py checks the arguments and computes Ho, Wo):

    max:      y[n, c, oy, ox] = max over the window of x;  the gradient goes to the winner
    average:  y[n, c, oy, ox] = (sum over the window of x) / (kh*kw);  each pixel gets gy / (kh*kw)

For a fixed tap (r, s) the reads form one strided slice of the padded input, so pooling is a
short loop over the kh*kw taps, each a vectorised array operation; within one tap no two
outputs read the same pixel, so the backward's ``+=`` on a strided slice never needs
``np.add.at``. MaxPool2d and AvgPool2d below are that loop, on NumPy and CuPy arrays alike;
the tuned CPU paths (ops/fast/pool.py) and the CUDA kernels (cuda/pool.py) are their subclasses,
and tinygrad_yolo/dispatch.py picks one per call.

Padding follows PyTorch: at most half the kernel, counting as -inf for max (it never wins)
and as 0 for average (count_include_pad=True: the divisor is always kh*kw).
"""
from ..backend import array_module
from ..function import Function
from .geometry import int_pair, pool_window


def padded(x, win, fill):
    """A fresh copy of x (N, C, H, W) with ``win``'s padding on both sides, set to ``fill``."""
    N, C, H, W = x.shape
    out = array_module(x).full((N, C, H + 2 * win.ph, W + 2 * win.pw), fill, dtype=x.dtype)
    out[:, :, win.ph:win.ph + H, win.pw:win.pw + W] = x
    return out


def tap(a, t, win):
    """The (N, C, Ho, Wo) strided slice of padded ``a`` that kernel tap t (row-major) reads."""
    r, s = divmod(t, win.kw)
    return a[:, :, r:r + win.sh * (win.Ho - 1) + 1:win.sh, s:s + win.sw * (win.Wo - 1) + 1:win.sw]


def unpadded(a, win, x_shape):
    """The image part of padded ``a``, as a fresh contiguous array."""
    H, W = x_shape[2:]
    return array_module(a).ascontiguousarray(a[:, :, win.ph:win.ph + H, win.pw:win.pw + W])


class MaxPool2d(Function):
    """Max over each window; the gradient goes to the winner -- the FIRST maximum in row-major
    window order on ties (as the CUDA kernel does). NaN propagates: the first NaN wins."""
    name = "MaxPool2d"  # whichever path (subclass) runs

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        self.window = win = pool_window("max_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        xp = array_module(x)
        xpad = padded(x, win, -float("inf"))
        y = tap(xpad, 0, win).copy()
        self.won = xp.zeros(y.shape, dtype=xp.int32)  # the winning tap of each window
        for t in range(1, win.kh * win.kw):
            v = tap(xpad, t, win)
            wins = (v > y) | (xp.isnan(v) & ~xp.isnan(y))  # later equal values lose
            y = xp.where(wins, v, y)
            self.won = xp.where(wins, t, self.won)
        return y

    def backward(self, gy):
        win, xp = self.window, array_module(gy)
        N, C, H, W = self.x_shape
        dx = xp.zeros((N, C, H + 2 * win.ph, W + 2 * win.pw), dtype=gy.dtype)
        for t in range(win.kh * win.kw):
            view = tap(dx, t, win)
            view += xp.where(self.won == t, gy, 0)
        return unpadded(dx, win, self.x_shape)


class AvgPool2d(Function):
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    name = "AvgPool2d"  # whichever path (subclass) runs

    def __init__(self, kernel_size, stride=None, padding=0):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        self.window = win = pool_window("avg_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        xpad = padded(x, win, 0)
        y = tap(xpad, 0, win).copy()
        for t in range(1, win.kh * win.kw):
            y += tap(xpad, t, win)
        return y * (1.0 / (win.kh * win.kw))

    def backward(self, gy):
        win, xp = self.window, array_module(gy)
        N, C, H, W = self.x_shape
        share = gy * (1.0 / (win.kh * win.kw))
        dx = xp.zeros((N, C, H + 2 * win.ph, W + 2 * win.pw), dtype=gy.dtype)
        for t in range(win.kh * win.kw):
            view = tap(dx, t, win)
            view += share
        return unpadded(dx, win, self.x_shape)


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
            raise ValueError(f"adaptive_avg_pool2d: input must be 4-d (N, C, H, W), got shape "
                             f"{x.shape}")
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

    def backward(self, gy):
        xp = array_module(gy)
        N, C, H, W = self.x_shape
        if self.bins is None:
            dx = xp.empty(self.x_shape, dtype=gy.dtype)  # a real array, not a broadcast view:
            dx[...] = gy * (1.0 / (H * W))                # the engine may add into it in place
            return dx
        dx = xp.zeros(self.x_shape, dtype=gy.dtype)
        for i, (h0, h1) in enumerate(self.bins[0]):
            for j, (w0, w1) in enumerate(self.bins[1]):
                share = gy[:, :, i:i + 1, j:j + 1] * (1.0 / ((h1 - h0) * (w1 - w0)))
                dx[:, :, h0:h1, w0:w1] += share
        return dx


def _pair_or_none(v):
    """output_size: an int, or a pair of ints or None (None keeps that side)."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) == 2 and None in items:
        return tuple(None if a is None else int_pair(a, "output_size", "adaptive_avg_pool2d")[0]
                     for a in items)
    return int_pair(v, "output_size", "adaptive_avg_pool2d")
