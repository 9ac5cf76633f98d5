"""conv2d's "tiled" CPU path, for small maps (14x14, 7x7), where one image's columns make a
narrow, slow GEMM: the batch goes along the columns.

The input is copied once into a zero-padded *batch-last* layout (C, H+2ph, W+2pw, N), split into
its stride phases when the stride is above 1 (phases.stride_phases), so that for every kernel
tap the pixels it reads form a block whose rows are runs of Wo*N contiguous values. The im2col
matrix is then built in tiles of a few output rows, one block copy per tap, each tile small
enough to stay in cache, straight into the GEMM; dW recomputes its tiles, so nothing the size
of the im2col matrix reaches main memory or what is saved for backward. The price is
transposing x, y, gy and dx between NCHW and batch-last (gathers with an N-value stride): on
large maps that costs more than it saves, hence conv_images there (docs/performance.md).
"""
import numpy as np

from ..conv import Conv2d
from ..geometry import kernel_taps
from .choices import dw_gemm, dw_transposed, dx_as_convolution, flipped_weights
from .phases import merge_stride_phases, phases_shape, stride_phases
from .workspace import scratch

# Tile size for the CPU path: the im2col tile (C*R*S x rows*Wo*N) should sit in L2/L3 while the
# GEMM reads it, but GEMMs with few columns are inefficient. Tuned with benchmarks/bench_conv.py.
TILE_BYTES = 6 << 20
MIN_TILE_COLUMNS = 512
KEEP_PADDED_BYTES = 16 << 20  # see TiledConv2d.forward


class TiledConv2d(Conv2d):
    """Conv2d with the batch along the im2col matrix's columns, built tile by tile in cache."""

    def forward(self, x, w, b=None):
        win = self.setup(x, w, b)
        N, C, H, W = x.shape
        K = w.shape[0]
        # dW needs the input's windows again. Keeping the padded copy saves rebuilding it, but
        # only pays while it is small enough for malloc to recycle its memory (big blocks are
        # fresh mmaps).
        padded_bytes = C * (H + 2 * win.ph + 1) * (W + 2 * win.pw + 1) * N * x.itemsize
        keep = self.needs_input_grad[1] and padded_bytes <= KEEP_PADDED_BYTES
        geometry = (win.kernel, win.stride, win.dilation)
        phases = stride_phases("conv.x", x.transpose(1, 2, 3, 0), win.padding, geometry, fresh=keep)
        self.phases = phases if keep else None
        yt = scratch("conv.y", (K, win.Ho, win.Wo, N), x.dtype)
        tiled_gemm(phases, geometry, self.w2, yt)
        y = np.empty((N, K, win.Ho, win.Wo), dtype=x.dtype)  # fresh: the engine keeps it
        if b is None:  # the bias is added while transposing to NCHW
            np.copyto(y, yt.transpose(3, 0, 1, 2))
        else:
            np.add(yt.transpose(3, 0, 1, 2), b.reshape(1, K, 1, 1), out=y)
        return y

    def backward(self, gy):
        K, (Ho, Wo), N = gy.shape[1], self.window.out_hw, gy.shape[0]
        gt = scratch("conv.gy", (K, Ho, Wo, N), gy.dtype)
        np.copyto(gt, gy.transpose(1, 2, 3, 0))
        g2 = gt.reshape(K, -1)  # (K, Ho*Wo*N), the same column order as the im2col matrix
        dw = self.weight_grad(g2) if self.needs_input_grad[1] else None
        dx = self.input_grad(gt, g2) if self.needs_input_grad[0] else None
        return self.gradients(gy, dx, dw)

    def weight_grad(self, g2):
        """dW = gy @ colᵀ, accumulated over tiles of recomputed im2col, in the orientation
        dw_transposed picks."""
        x, win = self.x, self.window
        N, C = x.shape[:2]
        K, q = self.w2.shape
        geometry = (win.kernel, win.stride, win.dilation)
        phases = self.phases
        if phases is None:
            phases = stride_phases("conv.x", x.transpose(1, 2, 3, 0), win.padding, geometry)
        columns = win.Wo * N
        transposed = dw_transposed("tiled", win.Ho * columns)
        acc = scratch("conv.dwt", (q, K), x.dtype) if transposed else np.empty((K, q), x.dtype)
        for i, (a, b) in enumerate(row_tiles(win.Ho, columns, q, x.itemsize)):
            col = scratch("conv.col", (C, win.kh, win.kw, b - a, win.Wo, N), x.dtype)
            im2col_rows(col, phases, geometry, a, b)
            part = acc if i == 0 else scratch("conv.dw_part", acc.shape, x.dtype)
            dw_gemm(col.reshape(q, -1), g2[:, a * columns:b * columns], transposed, part)
            if i:
                acc += part
        # .copy(), not ascontiguousarray: for K = 1 the latter returns a view of the scratch buffer
        return acc.T.copy() if transposed else acc

    def input_grad(self, gt, g2):
        """dx: at stride 1 a convolution of gy on the same tiles where dx_as_convolution says so,
        else col2im: dcol = Wᵀ @ gy tile by tile, each tap added back where it was read."""
        x, w, win = self.x, self.w, self.window
        N, C, H, W = x.shape
        dx_window = dx_as_convolution("tiled", win, w.size, g2.size)
        if dx_window is not None:
            geometry = (dx_window.kernel, dx_window.stride, dx_window.dilation)
            gpad = stride_phases("conv.gpad", gt, dx_window.padding, geometry)
            dxt = scratch("conv.dx", (C, H, W, N), x.dtype)
            tiled_gemm(gpad, geometry, flipped_weights(w), dxt)
            dx = np.empty(x.shape, dtype=x.dtype)
            np.copyto(dx, dxt.transpose(3, 0, 1, 2))
            return dx
        geometry, q, columns = (win.kernel, win.stride, win.dilation), self.w2.shape[1], win.Wo * N
        dphases = scratch("conv.dx", phases_shape((C, H, W, N), win.padding, win.stride), x.dtype)
        dphases.fill(0)
        for a, b in row_tiles(win.Ho, columns, q, x.itemsize):
            dcol = scratch("conv.col", (C, win.kh, win.kw, b - a, win.Wo, N), x.dtype)
            np.matmul(self.w2.T, g2[:, a * columns:b * columns], out=dcol.reshape(q, -1))
            col2im_rows(dphases, dcol, geometry, a, b)
        return merge_stride_phases(dphases, x.shape, win.padding, win.stride)


def im2col_rows(col, phases, geometry, a, b):
    """col (C, R, S, b - a, Wo, N) <- output rows a..b of the im2col matrix, one copy per tap."""
    Wo = col.shape[4]
    for r, s, py, px, qy, qx in kernel_taps(*geometry):
        np.copyto(col[:, r, s], phases[:, py, px, qy + a:qy + b, qx:qx + Wo])


def col2im_rows(phases, col, geometry, a, b):
    """The adjoint: add each tap of col back onto the (phase) pixels it was read from. Within one
    tap every output reads a different pixel, so a strided += is exact (no np.add.at)."""
    Wo = col.shape[4]
    for r, s, py, px, qy, qx in kernel_taps(*geometry):
        phases[:, py, px, qy + a:qy + b, qx:qx + Wo] += col[:, r, s]


def row_tiles(rows, row_columns, q, itemsize):
    """Split the output rows into tiles of about TILE_BYTES of im2col (q x rows*row_columns)."""
    row_columns = max(1, row_columns)
    per = max(TILE_BYTES // max(1, q * row_columns * itemsize),
              -(-MIN_TILE_COLUMNS // row_columns), 1)
    n = -(-rows // per)
    per = -(-rows // max(n, 1))  # even tiles: 10 rows at most 7 a tile -> 5 + 5, not 7 + 3
    return [(a, min(rows, a + per)) for a in range(0, rows, per)]


def tiled_gemm(phases, geometry, w2, out):
    """out (K, Ho, Wo, N) = w2 (K, q) @ im2col matrix, built tile by tile (each tile in cache)."""
    K, Ho, Wo, N = out.shape
    C, (R, S) = phases.shape[0], geometry[0]
    q = C * R * S
    out2 = out.reshape(K, -1)
    for a, b in row_tiles(Ho, Wo * N, q, w2.itemsize):
        col = scratch("conv.col", (C, R, S, b - a, Wo, N), w2.dtype)
        im2col_rows(col, phases, geometry, a, b)
        np.matmul(w2, col.reshape(q, -1), out=out2[:, a * Wo * N:b * Wo * N])
