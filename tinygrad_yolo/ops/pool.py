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
from .fast.phases import merge_stride_phases, stride_phases
from .geometry import int_pair, pool_geometry
from .workspace import chunks, scratch


def _tap(a, r, s, stride, out_hw):
    """The (Ho, Wo, N*C) strided slice of channels-last ``a`` read by kernel tap (r, s)."""
    (sh, sw), (Ho, Wo) = stride, out_hw
    return a[r:r + sh * (Ho - 1) + 1:sh, s:s + sw * (Wo - 1) + 1:sw]


def _channels_last(name, x, padding, fill):
    """Scratch copy of x (N, C, H, W) as (H + 2ph, W + 2pw, N*C), borders set to ``fill``.

    Why this layout: a tap's slice is strided in H and W (stride 2 for most pools), and NumPy
    runs strided or short inner loops slowly. With N*C innermost every tap is a slice whose
    rows are N*C contiguous values, whatever the stride."""
    xp = array_module(x)
    N, C, H, W = x.shape
    ph, pw = padding
    buf = scratch(name, (H + 2 * ph, W + 2 * pw, N * C), x.dtype, xp)
    buf[:ph] = fill
    buf[ph + H:] = fill
    buf[ph:ph + H, :pw] = fill
    buf[ph:ph + H, pw + W:] = fill
    buf.reshape(H + 2 * ph, W + 2 * pw, N, C)[ph:ph + H, pw:pw + W] = x.transpose(2, 3, 0, 1)
    return buf


def _to_nchw(a_cl, shape, scale=None):
    """Fresh (N, C, h, w) array from channels-last (h, w, N*C) ``a_cl``, optionally scaled."""
    xp = array_module(a_cl)
    N, C, h, w = shape
    out = xp.empty(shape, dtype=a_cl.dtype)
    src = a_cl.reshape(h, w, N, C).transpose(2, 3, 0, 1)
    # On NumPy one image row at a time: a single transposing copy gathers every output row from
    # N*C places far apart and thrashes the cache; row by row it runs over twice as fast.
    rows = [slice(i, i + 1) for i in range(h)] if xp is np else [slice(None)]
    for r in rows:
        if scale is None:
            out[:, :, r] = src[:, :, r]
        else:
            xp.multiply(src[:, :, r], scale, out=out[:, :, r])
    return out


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
            self._forward_maps(maps[a:b], y3[a:b], self.col_won[a:b], self.row_won[a:b])
        return y

    def _forward_maps(self, maps, y3, col_won, row_won):
        """y3 (maps, Ho, Wo) <- the max over each window of ``maps`` (m, H, W); the two passes'
        winners into col_won and row_won."""
        (kh, kw), (sh, sw), padding, (Ho, Wo) = self.geometry
        # padded with -inf, columns split into their stride phases (rows are not: the vertical
        # pass works on row maxima): (m, 1, sw, H + 2ph, Wq, 1)
        cols = stride_phases("pool.x", maps[..., None], padding, ((1, kw), (1, sw), (1, 1)), fill=-np.inf)
        # horizontal: row_max[m, i, ox] = max over s of xpad[m, i, ox*sw + s]
        row_max = scratch("pool.row_max", col_won.shape, maps.dtype)
        col_taps = [_column_tap(cols, s, sw, Wo) for s in range(kw)]
        # vertical: y[m, oy, ox] = max over r of row_max[m, oy*sh + r, ox]
        row_taps = [row_max[:, r:r + sh * (Ho - 1) + 1:sh] for r in range(kh)]
        _first_max(col_taps, row_max, col_won, nan_aware=False)
        _first_max(row_taps, y3, row_won, nan_aware=False)
        if np.isnan(y3).any():  # rare: redo with the rule that the first NaN wins
            _first_max(col_taps, row_max, col_won, nan_aware=True)
            _first_max(row_taps, y3, row_won, nan_aware=True)

    def backward(self, g):
        (kh, kw), stride, padding, out_hw = self.geometry
        if array_module(g) is not np:
            kernels = cuda_kernels()
            return kernels.max_pool2d_backward_gpu(g, self.argmax, self.x_shape, (kh, kw), stride, padding)
        N, C, H, W = self.x_shape
        gx = np.empty(self.x_shape, dtype=g.dtype)
        g3, gx3 = g.reshape(N * C, *out_hw), gx.reshape(N * C, H, W)
        for a, b in chunks(N * C, _per_map_bytes(H, W, padding, out_hw, g.itemsize)):
            self._backward_maps(g3[a:b], self.col_won[a:b], self.row_won[a:b], gx3[a:b])
        return gx

    def _backward_maps(self, g3, col_won, row_won, gx3):
        """gx3 (m, H, W) <- g3 (m, Ho, Wo) routed back through the two passes' choices."""
        (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = self.geometry
        m, H, W = gx3.shape
        # the vertical choice first (the reverse of forward): g reaches its window's winning row
        g_rows = scratch("pool.g_rows", col_won.shape, g3.dtype)
        g_rows.fill(0)
        _route(g3, row_won, [g_rows[:, r:r + sh * (Ho - 1) + 1:sh] for r in range(kh)])
        g_cols = scratch("pool.gx", (m, 1, sw, H + 2 * ph, -(-(W + 2 * pw) // sw), 1), g3.dtype)
        g_cols.fill(0)
        _route(g_rows, col_won, [_column_tap(g_cols, s, sw, Wo) for s in range(kw)])
        merge_stride_phases(g_cols, (1, m, H, W), (ph, pw), (1, sw), out=gx3[None])


def _per_map_bytes(H, W, padding, out_hw, itemsize):
    """Bytes of temporaries one map needs: its padded copy, row maxima, masks and indices."""
    (ph, pw), (Ho, Wo) = padding, out_hw
    rows = H + 2 * ph
    return rows * (W + 2 * pw + 1) * itemsize + rows * Wo * (2 * itemsize + 3) + Ho * Wo * (itemsize + 3)


def _column_tap(cols, s, sw, Wo):
    """The (N*C, rows, Wo) view of padded columns ox*sw + s, ox < Wo, in the phases ``cols``."""
    return cols[:, 0, s % sw, :, s // sw:s // sw + Wo, 0]


def _first_max(taps, out, won, nan_aware):
    """out <- the max over the equally shaped views ``taps``, won <- the index of the first one
    holding it (later equal values lose: strict >). With ``nan_aware`` the first NaN wins."""
    np.copyto(out, taps[0])
    won.fill(0)
    wins = scratch("pool.mask", out.shape, bool)
    won_t = scratch("pool.index", out.shape, won.dtype)
    for t, v in enumerate(taps[1:], start=1):
        np.greater(v, out, out=wins)
        if nan_aware:  # a NaN beats a number; the first NaN stays
            wins |= np.isnan(v) & ~np.isnan(out)
        np.maximum(out, v, out=out)
        # Taps come in increasing t, so "won = t where tap t wins" is max(won, wins * t):
        # branch-free, unlike a masked copy.
        np.multiply(wins, won.dtype.type(t), out=won_t)
        np.maximum(won, won_t, out=won)
    return out


def _route(g, won, targets):
    """targets[t] += g where ``won`` == t: each gradient goes to the tap that won. Within one tap
    no two outputs share a target element, so a strided += is exact."""
    mask = scratch("pool.mask", g.shape, bool)
    share = scratch("pool.share", g.shape, g.dtype)
    for t, view in enumerate(targets):
        np.equal(won, t, out=mask)
        np.multiply(g, mask, out=share)  # g where tap t won, else 0 (branch-free)
        view += share


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
