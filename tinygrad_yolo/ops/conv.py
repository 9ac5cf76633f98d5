"""2-D convolution: x (N, C, H, W), weight (K, C, R, S), optional bias (K,) -> y (N, K, Ho, Wo).

    y[n, k, oy, ox] = b[k] + sum over c, r, s of  w[k, c, r, s] * x[n, c, oy*sh - ph + r*dh, ox*sw - pw + s*dw]

(x is zero outside the image). Writing every receptive field as a column ("im2col") turns
this into one matrix product W (K, C*R*S) @ col (C*R*S, pixels), and the backward into two:

    dW = gy @ colᵀ            dcol = Wᵀ @ gy,  dx = col2im(dcol)  (sum each column entry back
                                                                  onto the pixel it was read from)

Three implementations of that one idea (``algorithm``; None picks by device and map size):

* ``im2col`` (CUDA, and the readable reference): col (N, C*R*S, Ho*Wo) from the kernels in
  kernels/ (or tinygrad_yolo.ops.im2col on NumPy), a batched GEMM per image through cuBLAS.
* ``images`` (NumPy, output maps of at least IMAGE_TILES_MIN_PIXELS): the same per-image
  im2col, but built for one image (or a few) at a time into a cache-sized scratch buffer and
  multiplied at once, reading x and gy and writing y and dx in NCHW directly. An image's own
  Ho*Wo columns make a wide enough GEMM when the map is large. At stride 1 the columns are
  built at a row pitch of W + pw instead (_WideColumns): one long copy per image rather than
  a short one per row, for a few junk columns that are computed and dropped.
* ``tiled`` (NumPy, small maps): at 14x14 or 7x7 one image's columns make a narrow, slow GEMM,
  so the batch goes along the columns. The input is copied once into a zero-padded
  *batch-last* layout (C, H+2ph, W+2pw, N), split into its stride phases when the stride is
  above 1 (see im2col.stride_phases), so that for every kernel tap the pixels it reads form a block whose
  rows are runs of Wo*N contiguous values. The im2col matrix is then built in tiles of a few
  output rows, one block copy per tap, each tile small enough to stay in cache, straight into
  the GEMM. The price is transposing x, y, gy and dx between NCHW and batch-last (gathers with
  an N-value stride): on large maps that costs more than it saves (45% of the tiled path's
  time on the width-0.25 network's 224x224 stem), hence ``images`` there.

Both NumPy paths keep anything the size of the im2col matrix out of main memory and out of
what is saved for backward: dW recomputes its tiles. For stride 1, dx is itself a convolution
(of gy with the flipped kernel, padded by d(R-1) - p), so it reuses the forward's loop instead
of a col2im.

Performance note: OpenBLAS's idle threads busy-wait after each GEMM, which on a 2-core machine
slows the NumPy copies between GEMMs several times over; importing tinygrad_yolo sets
OPENBLAS_THREAD_TIMEOUT=4, which only works when that import comes before NumPy's.

1x1 convolutions without padding skip im2col on both devices: x itself is the column matrix,
one batched GEMM on a reshaped view (with a stride, on a copy of the pixels it reads).
"""
import numpy as np

from ..backend import array_module, cuda_kernels
from ..function import Function
from .im2col import (col2im, conv_output_size, im2col, int_pair, kernel_taps, merge_stride_phases, pair,
                     stride_phases)
from .workspace import scratch

# Tile size for the CPU path: the im2col tile (C*R*S x rows*Wo*N) should sit in L2/L3 while the
# GEMM reads it, but GEMMs with few columns are inefficient. Tuned with benchmarks/bench_conv.py.
TILE_BYTES = 6 << 20
MIN_TILE_COLUMNS = 512
KEEP_PADDED_BYTES = 16 << 20  # see _tiled_forward
DW_TRANSPOSED_MIN_COLUMNS = 4096  # see _tiled_backward
IMAGE_TILES_MIN_PIXELS = 784  # output maps of 28x28 and more: the "images" algorithm
WIDE_MAX_JUNK = 1 / 8  # stride-1 "images" convs compute at the row pitch if it adds at most this
ALGORITHMS = ("tiled", "images", "im2col")


def check_conv_args(x_shape, w_shape, b_shape, stride, padding, dilation):
    """Validate shapes and hyper-parameters; raise a ValueError that names them."""
    if len(x_shape) != 4:
        raise ValueError(f"conv2d: input must be 4-d (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-d (out_channels, in_channels, kH, kW), "
                         f"got shape {tuple(w_shape)}")
    N, C, H, W = x_shape
    K, Cw, R, S = w_shape
    if C != Cw:
        raise ValueError(f"conv2d: input has {C} channels (shape {tuple(x_shape)}) but the weight "
                         f"{tuple(w_shape)} expects {Cw}")
    if b_shape is not None and tuple(b_shape) != (K,):
        raise ValueError(f"conv2d: bias must have shape ({K},) for weight {tuple(w_shape)}, "
                         f"got {tuple(b_shape)}")
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    if min(sh, sw) < 1 or min(dh, dw) < 1 or min(ph, pw) < 0 or min(R, S) < 1:
        raise ValueError(f"conv2d: need stride >= 1, dilation >= 1, padding >= 0 and a non-empty "
                         f"kernel, got stride {(sh, sw)}, dilation {(dh, dw)}, padding {(ph, pw)}, "
                         f"weight {tuple(w_shape)}")
    eh, ew = dh * (R - 1) + 1, dw * (S - 1) + 1  # the kernel's extent once dilated
    if eh > H + 2 * ph or ew > W + 2 * pw:
        raise ValueError(f"conv2d: kernel {R}x{S} (dilation {(dh, dw)}: extent {eh}x{ew}) is larger "
                         f"than the padded input {H + 2 * ph}x{W + 2 * pw} (input shape "
                         f"{tuple(x_shape)}, padding {(ph, pw)})")
    Ho, Wo = conv_output_size(H, R, sh, ph, dh), conv_output_size(W, S, sw, pw, dw)
    return (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)


class Conv2d(Function):
    """Inputs (x, w) or (x, w, b). ``algorithm`` None picks "im2col" on CUDA and on NumPy
    "images" for large output maps, "tiled" for small ones; "im2col" on NumPy runs the reference
    path (tests compare all three)."""

    def __init__(self, stride=1, padding=0, dilation=1, algorithm=None):
        self.stride = int_pair(stride, "stride", "conv2d")
        self.padding = int_pair(padding, "padding", "conv2d", minimum=0)
        self.dilation = int_pair(dilation, "dilation", "conv2d")
        if algorithm not in (None,) + ALGORITHMS:
            raise ValueError(f"unknown conv2d algorithm {algorithm!r}: expected one of {ALGORITHMS}")
        self.algorithm = algorithm

    def forward(self, x, w, b=None):
        if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
            raise TypeError(f"conv2d: input, weight and bias must share a dtype, got {x.dtype}, "
                            f"{w.dtype}" + (f", {b.dtype}" if b is not None else ""))
        _, _, _, (Ho, Wo) = check_conv_args(x.shape, w.shape, None if b is None else b.shape,
                                            self.stride, self.padding, self.dilation)
        xp = array_module(x)
        self.x, self.w, self.has_bias, self.out_hw = x, w, b is not None, (Ho, Wo)
        K, C, R, S = w.shape
        self.w2 = w.reshape(K, C * R * S)  # a view when w is contiguous
        if self.algorithm is None:
            if xp is not np:
                self.algorithm = "im2col"
            else:
                self.algorithm = "images" if Ho * Wo >= IMAGE_TILES_MIN_PIXELS else "tiled"
        if self.algorithm != "im2col" and xp is not np:
            raise ValueError(f"conv2d: the {self.algorithm} algorithm is a NumPy path; CUDA arrays use 'im2col'")
        self.pointwise = (R, S) == (1, 1) and self.padding == (0, 0)
        self.empty = x.size == 0 or w.size == 0
        if self.empty:  # no images, channels or filters: y is b (a sum over nothing is 0), or empty
            y = xp.zeros((x.shape[0], K, Ho, Wo), dtype=x.dtype)
            return y + b.reshape(1, K, 1, 1) if b is not None else y
        if self.algorithm == "images" and not self.pointwise:
            y = np.empty((x.shape[0], K, Ho, Wo), dtype=x.dtype)  # fresh: the engine keeps it
            _images_conv(x, self.w2, self.padding, ((R, S), self.stride, self.dilation), y)
            if b is not None:
                y += b.reshape(1, K, 1, 1)
            return y
        if self.algorithm == "tiled" and not self.pointwise:  # adds the bias while transposing to NCHW
            y, self.phases = _tiled_forward(x, self.w2, b, (R, S), self.stride, self.padding, self.dilation,
                                            (Ho, Wo), keep_input=self.needs_input_grad[1])
            return y
        if self.pointwise:
            # the pixels the 1x1 kernel reads (x itself at stride 1), kept for dW
            self.x_read = _subsample(x, self.stride)
            y = _pointwise_forward(self.x_read, self.w2)
        else:
            y = self._im2col_forward(x)
        if b is not None:
            y += b.reshape(1, K, 1, 1)
        return y

    def backward(self, g):
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        K, C, R, S = self.w.shape
        db = g.sum(axis=(0, 2, 3)) if need_b else None
        if self.empty:
            xp = array_module(g)
            dx = xp.zeros(self.x.shape, dtype=g.dtype) if need_x else None
            dw = xp.zeros(self.w.shape, dtype=g.dtype) if need_w else None
        elif self.pointwise:
            dx, dw = _pointwise_backward(self.x.shape, self.x_read, self.w2, g, self.stride, need_x, need_w)
        elif self.algorithm == "images":
            dx, dw = _images_backward(self.x, self.w, self.w2, g, self.stride, self.padding,
                                      self.dilation, need_x, need_w)
        elif self.algorithm == "tiled":
            dx, dw = _tiled_backward(self.x, self.w, self.w2, g, self.stride, self.padding,
                                     self.dilation, need_x, need_w, self.phases)
        else:
            dx, dw = self._im2col_backward(g, need_x, need_w)
        dw = dw.reshape(self.w.shape) if dw is not None else None
        return (dx, dw, db) if self.has_bias else (dx, dw)

    # ---- the reference path: im2col (N, C*R*S, Ho*Wo) and a batched GEMM ---------------
    def _im2col_forward(self, x):
        xp = array_module(x)
        if xp is not np:  # cuBLAS without hidden copies, columns in chunks (ops/conv_gpu.py)
            from . import conv_gpu
            return conv_gpu.im2col_forward(x, self.w2, self.w.shape[2:], self.stride, self.padding,
                                           self.dilation, self.out_hw)
        to_col, _ = _im2col_functions(xp)
        K, C, R, S = self.w.shape
        N, (Ho, Wo) = x.shape[0], self.out_hw
        col = to_col(x, R, S, self.stride, self.padding, self.dilation).reshape(N, C * R * S, Ho * Wo)
        # col is R*S times the input's size: not kept for backward, which rebuilds it from x
        # (as Caffe does). On a GPU the im2col kernel costs a fraction of the GEMM it feeds,
        # while every conv's col kept came to about half of a training step's memory.
        return xp.matmul(self.w2, col).reshape(N, K, Ho, Wo)

    def _im2col_backward(self, g, need_x, need_w):
        xp = array_module(g)
        if xp is not np:
            from . import conv_gpu
            return conv_gpu.im2col_backward(self.x, self.w, self.w2, g, self.stride, self.padding, self.dilation, need_x,
                                            need_w, _dx_conv_padding(self.w.shape[2:], self.stride, self.padding,
                                                                     self.dilation), _flipped_weights)
        to_col, to_im = _im2col_functions(xp)
        K, C, R, S = self.w.shape
        N, (Ho, Wo) = g.shape[0], self.out_hw
        g3 = g.reshape(N, K, Ho * Wo)
        dw = None
        if need_w:
            col = to_col(self.x, R, S, self.stride, self.padding, self.dilation).reshape(N, C * R * S, Ho * Wo)
            dw = _weight_grad(g3, col)
            del col
        dx = None
        as_conv = _dx_conv_padding((R, S), self.stride, self.padding, self.dilation)
        if need_x and as_conv is not None:
            # dx as a convolution of gy (_dx_conv_padding): on a GPU its im2col runs 2-3x faster
            # than col2im's gather, for a GEMM of the same size
            gcol = to_col(g, R, S, 1, as_conv, self.dilation).reshape(N, K * R * S, -1)
            dx = xp.matmul(_flipped_weights(self.w), gcol).reshape(self.x.shape)
        elif need_x:
            dcol = xp.matmul(self.w2.T, g3).reshape(N, C, R, S, Ho, Wo)
            dx = to_im(dcol, self.x.shape, R, S, self.stride, self.padding, self.dilation)
        return dx, dw


def _im2col_functions(xp):
    if xp is np:
        return im2col, col2im
    kernels = cuda_kernels()  # compiled with CuPy on first use
    return kernels.im2col_gpu, kernels.col2im_gpu


# ---- 1x1, no padding: x (N, C, H*W) is already the column matrix -----------------------------
# With a stride (the projection shortcuts of ResNet), first keep the pixels the kernel reads.
def _subsample(x, stride):
    if stride == (1, 1):
        return x
    return array_module(x).ascontiguousarray(x[:, :, ::stride[0], ::stride[1]])


def _pointwise_forward(x_read, w2):
    if array_module(x_read) is not np:
        from . import conv_gpu
        return conv_gpu.pointwise_forward(x_read, w2)
    N, C, Ho, Wo = x_read.shape
    return array_module(x_read).matmul(w2, x_read.reshape(N, C, Ho * Wo)).reshape(N, w2.shape[0], Ho, Wo)


def _pointwise_backward(x_shape, x_read, w2, g, stride, need_x, need_w):
    xp = array_module(g)
    if xp is not np:
        from . import conv_gpu
        return conv_gpu.pointwise_backward(x_shape, x_read, w2, g, stride, need_x, need_w)
    N, C, Ho, Wo = x_read.shape
    K = g.shape[1]
    g3 = g.reshape(N, K, Ho * Wo)
    dx = dw = None
    if need_x:
        dx_read = xp.matmul(w2.T, g3).reshape(N, C, Ho, Wo)  # the gradient of the pixels read
        if stride == (1, 1):
            dx = dx_read
        else:  # the others get none
            dx = xp.zeros(x_shape, dtype=g.dtype)
            dx[:, :, ::stride[0], ::stride[1]] = dx_read
    if need_w:
        dw = _weight_grad(g3, x_read.reshape(N, C, Ho * Wo))
    return dx, dw


def _dx_conv_padding(kernel, stride, padding, dilation):
    """At stride 1 the input gradient is itself a convolution:

        dx[c, i] = sum over k, r of w[k, c, r] * gy[k, i + (R-1-r)*d - q],   q = d(R-1) - p

    a stride-1 convolution of gy, padded by q, with the kernel flipped and its K and C axes
    swapped (_flipped_weights), instead of a col2im. Returns its padding (qh, qw), or None
    where it doesn't apply (a stride, or a padding beyond the kernel's reach)."""
    (R, S), (ph, pw), (dh, dw) = kernel, padding, dilation
    qh, qw = dh * (R - 1) - ph, dw * (S - 1) - pw
    return (qh, qw) if stride == (1, 1) and qh >= 0 and qw >= 0 else None


def _flipped_weights(w):
    """(K, C, R, S) -> the (C, K*R*S) weight matrix of _dx_conv_padding's convolution."""
    K, C, R, S = w.shape
    return array_module(w).ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, K * R * S)


def _weight_grad(g3, col):
    """dW = Σ over images n of g3[n] (K, P) @ col[n]ᵀ (P, Q) -> (K, Q): a batched GEMM that reads
    col where it lies, then a sum of N small (K, Q) products. (tensordot would first copy col, on a
    GPU often the step's largest array, into an (N*P, Q) matrix for one long GEMM.)"""
    return array_module(g3).matmul(g3, col.transpose(0, 2, 1)).sum(axis=0)


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


# ---- the images CPU path: per-image im2col, straight from and into NCHW ------------------------
def _image_groups(N, q, pixels, itemsize):
    """Split the batch into groups of images whose im2col (q x pixels each) fills about TILE_BYTES."""
    per = max(1, TILE_BYTES // max(1, q * pixels * itemsize))
    n = -(-N // per)
    per = -(-N // n)  # even groups
    return [(a, min(N, a + per)) for a in range(0, N, per)]


def _images_im2col(x, a, b, padding, geometry, out_hw):
    """The im2col matrices of images a..b of x (N, C, H, W): a scratch (b - a, C*R*S, Ho*Wo).
    Each image is padded (and split into stride phases) on its own -- the batch-last machinery
    with a batch of one, whose layout (C, H, W, 1) is the image's own."""
    (R, S), (Ho, Wo), C = geometry[0], out_hw, x.shape[1]
    col = scratch("conv.col", (b - a, C, R, S, Ho, Wo, 1), x.dtype)
    for i in range(b - a):
        _im2col_rows(col[i], stride_phases("conv.x", x[a + i][..., None], padding, geometry), geometry, 0, Ho)
    return col.reshape(b - a, C * R * S, Ho * Wo)


def _wide_pitch(W, pw, out_w):
    """Row pitch of _WideColumns' flat image: W + pw (one shared run of padding between rows),
    or the output width where padding wider than the kernel's reach makes that wider."""
    return max(W + pw, out_w)


def _wide_im2col_ok(geometry, padding, in_w, out_hw):
    """Stride 1, and a map wide enough that the row pitch adds few junk columns."""
    return geometry[1] == (1, 1) and _wide_pitch(in_w, padding[1], out_hw[1]) - out_hw[1] <= WIDE_MAX_JUNK * out_hw[1]


class _WideColumns:
    """Stride-1 im2col computed at a row pitch Wp a little wider than the output, one image at a time.

    The image is laid out flat, padded with ph zero rows above and below, each row Wp long with
    its W pixels at offsets pw..pw+W and zeros before them. The zeros at the start of a row
    serve as the right padding of the row before it too (a read pw past the end of a row lands
    in them), so Wp = W + pw is enough, not W + 2pw. Kernel tap (r, s) of output pixel (oy, ox)
    then reads element c*Hp*Wp + (oy + r*dh)*Wp + ox + s*dw. Over all oy and ox in [0, Wp)
    that is ONE contiguous run of Ho*Wp elements per (c, r, s), starting at c*Hp*Wp + r*dh*Wp
    + s*dw: so the whole im2col matrix (C*R*S, Ho*Wp) is a strided view of the flat image, and
    one copy of it builds the matrix with long contiguous inner loops (the row-by-row copies of
    the plain path run ~4x slower, dominated by NumPy's per-row overhead). The price: each
    output row gets Wp - Wo junk columns (reads that wrap into the next row), computed and
    thrown away: one per row for a 3x3 kernel with padding 1, 3.6% more GEMM at 28x28. The last
    taps read (S-1)*dw elements past the image, hence the zeroed slack at the end of the buffer."""

    def __init__(self, shape, padding, geometry, dtype):
        C, H, W = shape
        (R, S), _, (dh, dw) = geometry
        (ph, pw) = padding
        Hp = H + 2 * ph
        Wp = _wide_pitch(W, pw, W + 2 * pw - dw * (S - 1))
        self.Ho, self.Wp, self.pad = Hp - dh * (R - 1), Wp, (ph, pw)
        plane, slack = C * Hp * Wp, (S - 1) * dw
        flat = scratch("conv.flat", (plane + slack,), dtype)
        flat.fill(0)  # padding and slack; images only ever overwrite the pixels
        self.image = flat[:plane].reshape(C, Hp, Wp)
        step = flat.itemsize
        self.taps = np.lib.stride_tricks.as_strided(
            flat, (C, R, S, self.Ho * Wp), (Hp * Wp * step, dh * Wp * step, dw * step, step), writeable=False)
        self.col = scratch("conv.col", (C * R * S, self.Ho * Wp), dtype)

    def of(self, image):
        """The (C*R*S, Ho*Wp) im2col matrix of one (C, H, W) image (a scratch buffer)."""
        ph, pw = self.pad
        self.image[:, ph:ph + image.shape[1], pw:pw + image.shape[2]] = image
        np.copyto(self.col.reshape(self.taps.shape), self.taps)
        return self.col


def _images_conv(x, w2, padding, geometry, out):
    """out (N, K, Ho, Wo) = w2 (K, C*R*S) @ each image's im2col matrix, a group at a time."""
    N, K, Ho, Wo = out.shape
    if _wide_im2col_ok(geometry, padding, x.shape[3], (Ho, Wo)):
        columns = _WideColumns(x.shape[1:], padding, geometry, x.dtype)
        y_wide = scratch("conv.y", (K, Ho, columns.Wp), x.dtype)
        for n in range(N):
            np.matmul(w2, columns.of(x[n]), out=y_wide.reshape(K, -1))
            out[n] = y_wide[:, :, :Wo]
        return out
    for a, b in _image_groups(N, w2.shape[1], Ho * Wo, x.itemsize):
        col = _images_im2col(x, a, b, padding, geometry, (Ho, Wo))
        np.matmul(w2, col, out=out[a:b].reshape(b - a, K, Ho * Wo))
    return out


def _images_backward(x, w, w2, g, stride, padding, dilation, need_x, need_w):
    """(dx, dW) of the images path: the _tiled_backward products, one group of images at a time."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    _, _, Ho, Wo = g.shape
    (ph, pw) = padding
    geometry, q = ((R, S), stride, dilation), C * R * S
    g3 = np.ascontiguousarray(g).reshape(N, K, Ho * Wo)
    groups = _image_groups(N, q, Ho * Wo, x.itemsize)
    dw = dx = None

    if need_w and _wide_im2col_ok(geometry, padding, W, (Ho, Wo)):  # as below, at the wide row pitch
        columns = _WideColumns((C, H, W), padding, geometry, x.dtype)
        g_wide = scratch("conv.gy", (K, Ho, columns.Wp), x.dtype)
        g_wide[:, :, Wo:] = 0  # the junk columns must not reach dW
        dwt, part = np.zeros((q, K), dtype=x.dtype), scratch("conv.dw_part", (q, K), x.dtype)
        for n in range(N):
            g_wide[:, :, :Wo] = g[n]
            np.matmul(columns.of(x[n]), g_wide.reshape(K, -1).T, out=part)
            dwt += part
        dw = dwt.T.copy()
    elif need_w:  # dWᵀ = sum over images of col @ gyᵀ (this orientation suits OpenBLAS with few K)
        dwt = np.zeros((q, K), dtype=x.dtype)
        for a, b in groups:
            col = _images_im2col(x, a, b, padding, geometry, (Ho, Wo))
            parts = scratch("conv.dw_part", (b - a, q, K), x.dtype)
            np.matmul(col, g3[a:b].transpose(0, 2, 1), out=parts)
            dwt += parts.sum(axis=0)
        dw = dwt.T.copy()

    if need_x:
        dx = np.empty(x.shape, dtype=x.dtype)
        as_conv = _dx_conv_padding((R, S), stride, padding, dilation)
        if as_conv is not None:  # dx as a convolution of gy (_dx_conv_padding)
            _images_conv(g, _flipped_weights(w), as_conv, geometry, dx)
        else:  # col2im, image by image
            dphases = scratch("conv.dx", (C,) + stride + (-(-(H + 2 * ph) // stride[0]),
                                                          -(-(W + 2 * pw) // stride[1]), 1), x.dtype)
            for a, b in groups:
                dcol = scratch("conv.col", (b - a, C, R, S, Ho, Wo, 1), x.dtype)
                np.matmul(w2.T, g3[a:b], out=dcol.reshape(b - a, q, Ho * Wo))
                for i in range(b - a):
                    dphases.fill(0)
                    _col2im_rows(dphases, dcol[i], geometry, 0, Ho)
                    merge_stride_phases(dphases, (1, C, H, W), padding, stride, out=dx[a + i:a + i + 1])
    return dx, dw
