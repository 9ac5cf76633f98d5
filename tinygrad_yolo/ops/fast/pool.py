"""Pooling's tuned CPU paths, subclasses of the reference ops in tinygrad_yolo/ops/pool.py (which
says what they compute): SeparableMaxPool2d and ChannelsLastAvgPool2d.

Max pooling is separable: the max of a window is the max over its rows of each row's max. A
horizontal pass takes the max over the kw column taps for every (padded) input row, then a
vertical pass the max over the kh rows of those: kw + kh tap operations instead of kw*kh, on
NCHW. The first maximum in row-major order is the first row holding the window's max, and
within it the first column: exactly what the two passes' strict ">" pick. Backward routes the
gradient back through the two choices in reverse.

The input is first copied, padded, into its column phases (phases.stride_phases) so that the
horizontal taps are contiguous slices: NumPy runs a loop with a stride-2 inner axis ~3x slower
than a contiguous one. All of it runs on a few maps at a time (workspace.chunks), so that the
dozen passes over each chunk's temporaries read the cache, not main memory (docs/performance.md
has the times).

Average pooling's taps run over a channels-last copy (channels_last): with N*C innermost every
tap is a slice whose rows are N*C contiguous values, whatever the stride.
"""
import numpy as np

from ..geometry import pool_window
from ..pool import AvgPool2d, MaxPool2d
from .phases import merge_stride_phases, phases_shape, stride_phases
from .workspace import chunks, scratch


class SeparableMaxPool2d(MaxPool2d):
    """MaxPool2d as a horizontal and a vertical pass, a few cached maps at a time."""

    def forward(self, x):
        self.window = win = pool_window("max_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        y, self.col_won, self.row_won = max_pool_forward(x, win)  # the two passes' choices
        return y

    def backward(self, gy):
        return max_pool_backward(gy, self.col_won, self.row_won, self.x_shape, self.window)


class ChannelsLastAvgPool2d(AvgPool2d):
    """AvgPool2d with its taps over a channels-last copy (H, W, N*C), whose rows stay long and
    contiguous whatever the stride (channels_last)."""

    def forward(self, x):
        self.window = win = pool_window("avg_pool2d", x.shape, *self.args)
        self.x_shape = x.shape
        N, C = x.shape[:2]
        xpad = channels_last("pool.x", x, win.padding, 0)
        acc = scratch("pool.y", win.out_hw + (N * C,), x.dtype)
        acc[...] = _tap(xpad, 0, 0, win)
        for t in range(1, win.kh * win.kw):
            acc += _tap(xpad, t // win.kw, t % win.kw, win)
        return to_nchw(acc, (N, C) + win.out_hw, scale=1.0 / (win.kh * win.kw))

    def backward(self, gy):
        win = self.window
        N, C, H, W = self.x_shape
        share = scratch("pool.g", win.out_hw + (N, C), gy.dtype)
        np.multiply(gy.transpose(2, 3, 0, 1), 1.0 / (win.kh * win.kw), out=share)
        share = share.reshape(win.out_hw + (N * C,))
        dx = scratch("pool.gx", (H + 2 * win.ph, W + 2 * win.pw, N * C), gy.dtype)
        dx.fill(0)
        for t in range(win.kh * win.kw):
            view = _tap(dx, t // win.kw, t % win.kw, win)
            view += share
        return to_nchw(dx[win.ph:win.ph + H, win.pw:win.pw + W], self.x_shape)


def _tap(a, r, s, win):
    """The (Ho, Wo, N*C) strided slice of channels-last ``a`` read by kernel tap (r, s)."""
    return a[r:r + win.sh * (win.Ho - 1) + 1:win.sh, s:s + win.sw * (win.Wo - 1) + 1:win.sw]


def channels_last(name, x, padding, fill):
    """Scratch copy of x (N, C, H, W) as (H + 2ph, W + 2pw, N*C), borders set to ``fill``.

    Why this layout: a tap's slice is strided in H and W (stride 2 for most pools), and NumPy
    runs strided or short inner loops slowly. With N*C innermost every tap is a slice whose
    rows are N*C contiguous values, whatever the stride."""
    N, C, H, W = x.shape
    ph, pw = padding
    buf = scratch(name, (H + 2 * ph, W + 2 * pw, N * C), x.dtype)
    buf[:ph] = fill
    buf[ph + H:] = fill
    buf[ph:ph + H, :pw] = fill
    buf[ph:ph + H, pw + W:] = fill
    buf.reshape(H + 2 * ph, W + 2 * pw, N, C)[ph:ph + H, pw:pw + W] = x.transpose(2, 3, 0, 1)
    return buf


def to_nchw(a_cl, shape, scale=None):
    """Fresh (N, C, h, w) array from channels-last (h, w, N*C) ``a_cl``, optionally scaled."""
    N, C, h, w = shape
    out = np.empty(shape, dtype=a_cl.dtype)
    src = a_cl.reshape(h, w, N, C).transpose(2, 3, 0, 1)
    # One image row at a time: a single transposing copy gathers every output row from N*C
    # places far apart and thrashes the cache; row by row it runs over twice as fast.
    for i in range(h):
        r = slice(i, i + 1)
        if scale is None:
            out[:, :, r] = src[:, :, r]
        else:
            np.multiply(src[:, :, r], scale, out=out[:, :, r])
    return out


def max_pool_forward(x, win):
    """-> (y, col_won, row_won): the max over each window of x (N, C, H, W) for the pooling
    Window ``win``, and the two passes' choices (what the backward routes through)."""
    N, C, H, W = x.shape
    index = np.uint8 if max(win.kh, win.kw) <= 255 else np.int32
    maps = x.reshape(N * C, H, W)
    y = np.empty((N, C) + win.out_hw, dtype=x.dtype)
    y3 = y.reshape(N * C, win.Ho, win.Wo)
    col_won = np.empty((N * C, H + 2 * win.ph, win.Wo), dtype=index)  # horizontal choices
    row_won = np.empty(y3.shape, dtype=index)                     # vertical choices
    for a, b in chunks(N * C, _per_map_bytes(H, W, win.padding, win.out_hw, x.itemsize)):
        _forward_maps(win, maps[a:b], y3[a:b], col_won[a:b], row_won[a:b])
    return y, col_won, row_won


def max_pool_backward(gy, col_won, row_won, x_shape, win):
    """dx: gy routed back through the two passes' choices, a few maps at a time."""
    N, C, H, W = x_shape
    dx = np.empty(x_shape, dtype=gy.dtype)
    gy3, dx3 = gy.reshape(N * C, win.Ho, win.Wo), dx.reshape(N * C, H, W)
    for a, b in chunks(N * C, _per_map_bytes(H, W, win.padding, win.out_hw, gy.itemsize)):
        _backward_maps(win, gy3[a:b], col_won[a:b], row_won[a:b], dx3[a:b])
    return dx


def _forward_maps(win, maps, y3, col_won, row_won):
    """y3 (maps, Ho, Wo) <- the max over each window of ``maps`` (m, H, W); the two passes'
    winners into col_won and row_won."""
    kh, kw, sh, sw, padding, Wo, Ho = win.kh, win.kw, win.sh, win.sw, win.padding, win.Wo, win.Ho
    # padded with -inf, columns split into their stride phases (rows are not: the vertical
    # pass works on row maxima): (m, 1, sw, H + 2ph, Wq, 1)
    cols = stride_phases("pool.x", maps[..., None], padding, ((1, kw), (1, sw), (1, 1)),
                         fill=-np.inf)
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


def _backward_maps(win, gy3, col_won, row_won, dx3):
    """dx3 (m, H, W) <- gy3 (m, Ho, Wo) routed back through the two passes' choices."""
    kh, kw, sh, sw, ph, pw, Ho, Wo = win.kh, win.kw, win.sh, win.sw, win.ph, win.pw, win.Ho, win.Wo
    m, H, W = dx3.shape
    # the vertical choice first (the reverse of forward): gy reaches its window's winning row
    g_rows = scratch("pool.g_rows", col_won.shape, gy3.dtype)
    g_rows.fill(0)
    _route(gy3, row_won, [g_rows[:, r:r + sh * (Ho - 1) + 1:sh] for r in range(kh)])
    g_cols = scratch("pool.gx", phases_shape((m, H, W, 1), (ph, pw), (1, sw)), gy3.dtype)
    g_cols.fill(0)
    _route(g_rows, col_won, [_column_tap(g_cols, s, sw, Wo) for s in range(kw)])
    merge_stride_phases(g_cols, (1, m, H, W), (ph, pw), (1, sw), out=dx3[None])


def _per_map_bytes(H, W, padding, out_hw, itemsize):
    """Bytes of temporaries one map needs: its padded copy, row maxima, masks and indices."""
    (ph, pw), (Ho, Wo) = padding, out_hw
    rows = H + 2 * ph
    padded = rows * (W + 2 * pw + 1) * itemsize
    return padded + rows * Wo * (2 * itemsize + 3) + Ho * Wo * (itemsize + 3)


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
