"""conv2d's "tiled" CPU path (small maps): the batch along the im2col columns, built tile by tile."""
import numpy as np

from ..geometry import kernel_taps
from ..workspace import scratch
from .choices import _dx_conv_padding, _flipped_weights
from .phases import merge_stride_phases, stride_phases

# Tile size for the CPU path: the im2col tile (C*R*S x rows*Wo*N) should sit in L2/L3 while the
# GEMM reads it, but GEMMs with few columns are inefficient. Tuned with benchmarks/bench_conv.py.
TILE_BYTES = 6 << 20
MIN_TILE_COLUMNS = 512
KEEP_PADDED_BYTES = 16 << 20  # see _tiled_forward
DW_TRANSPOSED_MIN_COLUMNS = 4096  # see _tiled_backward


# ---- the tiled CPU path -------------------------------------------------------------------
def _im2col_rows(col, phases, geometry, a, b):
    """col (C, R, S, b - a, Wo, N) <- output rows a..b of the im2col matrix, one copy per tap."""
    Wo = col.shape[4]
    for r, s, py, px, qy, qx in kernel_taps(*geometry):
        np.copyto(col[:, r, s], phases[:, py, px, qy + a:qy + b, qx:qx + Wo])


def _col2im_rows(phases, col, geometry, a, b):
    """The adjoint: add each tap of col back onto the (phase) pixels it was read from. Within one
    tap every output reads a different pixel, so a strided += is exact (no np.add.at)."""
    Wo = col.shape[4]
    for r, s, py, px, qy, qx in kernel_taps(*geometry):
        phases[:, py, px, qy + a:qy + b, qx:qx + Wo] += col[:, r, s]


def _row_tiles(rows, row_columns, q, itemsize):
    """Split the output rows into tiles of about TILE_BYTES of im2col (q x rows*row_columns)."""
    row_columns = max(1, row_columns)
    per = max(TILE_BYTES // max(1, q * row_columns * itemsize), -(-MIN_TILE_COLUMNS // row_columns), 1)
    n = -(-rows // per)
    per = -(-rows // max(n, 1))  # even tiles: 10 rows at most 7 a tile -> 5 + 5, not 7 + 3
    return [(a, min(rows, a + per)) for a in range(0, rows, per)]


def _tiled_gemm(phases, geometry, w2, out):
    """out (K, Ho, Wo, N) = w2 (K, q) @ im2col matrix, built tile by tile (each tile in cache)."""
    K, Ho, Wo, N = out.shape
    C, (R, S) = phases.shape[0], geometry[0]
    q = C * R * S
    out2 = out.reshape(K, -1)
    for a, b in _row_tiles(Ho, Wo * N, q, w2.itemsize):
        col = scratch("conv.col", (C, R, S, b - a, Wo, N), w2.dtype)
        _im2col_rows(col, phases, geometry, a, b)
        np.matmul(w2, col.reshape(q, -1), out=out2[:, a * Wo * N:b * Wo * N])


def _tiled_forward(x, w2, b, kernel, stride, padding, dilation, out_hw, keep_input):
    """-> (y, the phase-split input if kept for dW, else None)."""
    N, C, H, W = x.shape
    K, (Ho, Wo) = w2.shape[0], out_hw
    # dW needs the input's windows again. Keeping the padded copy saves rebuilding it, but only
    # pays while it is small enough for malloc to recycle its memory (big blocks are fresh mmaps).
    (ph, pw) = padding
    keep_input = keep_input and C * (H + 2 * ph + 1) * (W + 2 * pw + 1) * N * x.itemsize <= KEEP_PADDED_BYTES
    geometry = (kernel, stride, dilation)
    phases = stride_phases("conv.x", x.transpose(1, 2, 3, 0), padding, geometry, fresh=keep_input)
    yt = scratch("conv.y", (K, Ho, Wo, N), x.dtype)
    _tiled_gemm(phases, geometry, w2, yt)
    y = np.empty((N, K, Ho, Wo), dtype=x.dtype)  # fresh: the engine keeps it
    if b is None:
        np.copyto(y, yt.transpose(3, 0, 1, 2))
    else:
        np.add(yt.transpose(3, 0, 1, 2), b.reshape(1, K, 1, 1), out=y)
    return y, (phases if keep_input else None)


def _tiled_backward(x, w, w2, g, stride, padding, dilation, need_x, need_w, phases=None):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    _, _, Ho, Wo = g.shape
    (ph, pw) = padding
    geometry = ((R, S), stride, dilation)
    q = C * R * S
    gt = scratch("conv.gy", (K, Ho, Wo, N), g.dtype)
    np.copyto(gt, g.transpose(1, 2, 3, 0))
    g2 = gt.reshape(K, -1)  # (K, Ho*Wo*N), the same column order as the im2col matrix
    dw = dx = None

    if need_w:  # dW = gy @ colᵀ, accumulated over tiles of recomputed im2col
        if phases is None:
            phases = stride_phases("conv.x", x.transpose(1, 2, 3, 0), padding, geometry)
        # With many columns (large maps, few channels) OpenBLAS runs dWᵀ = col @ gyᵀ faster than
        # gy @ colᵀ, enough to pay for transposing the small result; with few, it doesn't.
        transposed = Ho * Wo * N >= DW_TRANSPOSED_MIN_COLUMNS
        acc = scratch("conv.dwt", (q, K), x.dtype) if transposed else np.empty((K, q), dtype=x.dtype)
        for i, (a, b) in enumerate(_row_tiles(Ho, Wo * N, q, x.itemsize)):
            col = scratch("conv.col", (C, R, S, b - a, Wo, N), x.dtype)
            _im2col_rows(col, phases, geometry, a, b)
            col, gy = col.reshape(q, -1), g2[:, a * Wo * N:b * Wo * N]
            part = acc if i == 0 else scratch("conv.dw_part", acc.shape, x.dtype)
            if transposed:
                np.matmul(col, gy.T, out=part)
            else:
                np.matmul(gy, col.T, out=part)
            if i:
                acc += part
        # .copy(), not ascontiguousarray: for K = 1 the latter returns a view of the scratch buffer
        dw = acc.T.copy() if transposed else acc

    if need_x:
        as_conv = _dx_conv_padding((R, S), stride, padding, dilation)
        # dx as a convolution of gy copies only gy-sized data, but needs a transposed copy of the
        # weights: where those are much larger than gy (deep layers at low resolution) the col2im
        # route below is cheaper.
        if as_conv is not None and w.size <= 2 * g.size:
            gpad = stride_phases("conv.gpad", gt, as_conv, geometry)
            dxt = scratch("conv.dx", (C, H, W, N), x.dtype)
            _tiled_gemm(gpad, geometry, _flipped_weights(w), dxt)
            dx = np.empty(x.shape, dtype=x.dtype)
            np.copyto(dx, dxt.transpose(3, 0, 1, 2))
        else:  # col2im: dcol = Wᵀ @ gy tile by tile, each tap added back where it was read
            dphases = scratch("conv.dx", (C,) + stride + (-(-(H + 2 * ph) // stride[0]),
                                                          -(-(W + 2 * pw) // stride[1]), N), x.dtype)
            dphases.fill(0)
            for a, b in _row_tiles(Ho, Wo * N, q, x.itemsize):
                dcol = scratch("conv.col", (C, R, S, b - a, Wo, N), x.dtype)
                np.matmul(w2.T, g2[:, a * Wo * N:b * Wo * N], out=dcol.reshape(q, -1))
                _col2im_rows(dphases, dcol, geometry, a, b)
            dx = merge_stride_phases(dphases, x.shape, padding, stride)
    return dx, dw
