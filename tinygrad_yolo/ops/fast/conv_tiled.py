"""conv2d's "tiled" CPU path, for small maps (14x14, 7x7), where one image's columns make a
narrow, slow GEMM: the batch goes along the columns.

The input is copied once into a zero-padded *batch-last* layout (C, H+2ph, W+2pw, N), split into
its stride phases when the stride is above 1 (phases.stride_phases), so that for every kernel
tap the pixels it reads form a block whose rows are runs of Wo*N contiguous values. The im2col
matrix is then built in tiles of a few output rows, one block copy per tap, each tile small
enough to stay in cache, straight into the GEMM; dW recomputes its tiles, so nothing the size
of the im2col matrix reaches main memory or what is saved for backward. The price is
transposing x, y, gy and dx between NCHW and batch-last (gathers with an N-value stride): on
large maps that costs more than it saves (45% of this path's time on the width-0.25 network's
224x224 stem), hence conv_images there.
"""
import numpy as np

from ..geometry import kernel_taps
from .workspace import scratch
from .choices import dw_gemm, dw_transposed, dx_as_convolution, flipped_weights
from .phases import merge_stride_phases, phases_shape, stride_phases

# Tile size for the CPU path: the im2col tile (C*R*S x rows*Wo*N) should sit in L2/L3 while the
# GEMM reads it, but GEMMs with few columns are inefficient. Tuned with benchmarks/bench_conv.py.
TILE_BYTES = 6 << 20
MIN_TILE_COLUMNS = 512
KEEP_PADDED_BYTES = 16 << 20  # see tiled_forward


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


def tiled_forward(x, w2, b, g, keep_input):
    """-> (y, the phase-split input if kept for dW, else None); y includes the bias, added while
    transposing to NCHW."""
    N, C, H, W = x.shape
    K = w2.shape[0]
    # dW needs the input's windows again. Keeping the padded copy saves rebuilding it, but only
    # pays while it is small enough for malloc to recycle its memory (big blocks are fresh mmaps).
    keep_input = keep_input and C * (H + 2 * g.ph + 1) * (W + 2 * g.pw + 1) * N * x.itemsize <= KEEP_PADDED_BYTES
    geometry = (g.kernel, g.stride, g.dilation)
    phases = stride_phases("conv.x", x.transpose(1, 2, 3, 0), g.padding, geometry, fresh=keep_input)
    yt = scratch("conv.y", (K, g.Ho, g.Wo, N), x.dtype)
    _tiled_gemm(phases, geometry, w2, yt)
    y = np.empty((N, K, g.Ho, g.Wo), dtype=x.dtype)  # fresh: the engine keeps it
    if b is None:
        np.copyto(y, yt.transpose(3, 0, 1, 2))
    else:
        np.add(yt.transpose(3, 0, 1, 2), b.reshape(1, K, 1, 1), out=y)
    return y, (phases if keep_input else None)


def tiled_backward(x, w, w2, gy, g, need_x, need_w, phases=None):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    Ho, Wo = g.out_hw
    geometry = (g.kernel, g.stride, g.dilation)
    q = C * R * S
    gt = scratch("conv.gy", (K, Ho, Wo, N), gy.dtype)
    np.copyto(gt, gy.transpose(1, 2, 3, 0))
    g2 = gt.reshape(K, -1)  # (K, Ho*Wo*N), the same column order as the im2col matrix
    dw = dx = None

    if need_w:  # dW = gy @ colᵀ, accumulated over tiles of recomputed im2col
        if phases is None:
            phases = stride_phases("conv.x", x.transpose(1, 2, 3, 0), g.padding, geometry)
        transposed = dw_transposed("tiled", Ho * Wo * N)
        acc = scratch("conv.dwt", (q, K), x.dtype) if transposed else np.empty((K, q), dtype=x.dtype)
        for i, (a, b) in enumerate(_row_tiles(Ho, Wo * N, q, x.itemsize)):
            col = scratch("conv.col", (C, R, S, b - a, Wo, N), x.dtype)
            _im2col_rows(col, phases, geometry, a, b)
            part = acc if i == 0 else scratch("conv.dw_part", acc.shape, x.dtype)
            dw_gemm(col.reshape(q, -1), g2[:, a * Wo * N:b * Wo * N], transposed, part)
            if i:
                acc += part
        # .copy(), not ascontiguousarray: for K = 1 the latter returns a view of the scratch buffer
        dw = acc.T.copy() if transposed else acc

    if need_x:
        gx = dx_as_convolution("tiled", g, w.size, gy.size)
        if gx is not None:  # a convolution of gy, on the same tiles
            gpad = stride_phases("conv.gpad", gt, gx.padding, (gx.kernel, gx.stride, gx.dilation))
            dxt = scratch("conv.dx", (C, H, W, N), x.dtype)
            _tiled_gemm(gpad, (gx.kernel, gx.stride, gx.dilation), flipped_weights(w), dxt)
            dx = np.empty(x.shape, dtype=x.dtype)
            np.copyto(dx, dxt.transpose(3, 0, 1, 2))
        else:  # col2im: dcol = Wᵀ @ gy tile by tile, each tap added back where it was read
            dphases = scratch("conv.dx", phases_shape((C, H, W, N), g.padding, g.stride), x.dtype)
            dphases.fill(0)
            for a, b in _row_tiles(Ho, Wo * N, q, x.itemsize):
                dcol = scratch("conv.col", (C, R, S, b - a, Wo, N), x.dtype)
                np.matmul(w2.T, g2[:, a * Wo * N:b * Wo * N], out=dcol.reshape(q, -1))
                _col2im_rows(dphases, dcol, geometry, a, b)
            dx = merge_stride_phases(dphases, x.shape, g.padding, g.stride)
    return dx, dw
