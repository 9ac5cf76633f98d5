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
  above 1 (see fast/phases.stride_phases), so that for every kernel tap the pixels it reads form a block whose
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
from .fast import conv_images, conv_tiled
from .fast.choices import _dx_conv_padding, _flipped_weights
from .fast.conv_images import IMAGE_TILES_MIN_PIXELS
from .geometry import check_conv_args, int_pair
from .im2col import col2im, im2col

ALGORITHMS = ("tiled", "images", "im2col")


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
            conv_images._images_conv(x, self.w2, self.padding, ((R, S), self.stride, self.dilation), y)
            if b is not None:
                y += b.reshape(1, K, 1, 1)
            return y
        if self.algorithm == "tiled" and not self.pointwise:  # adds the bias while transposing to NCHW
            y, self.phases = conv_tiled._tiled_forward(x, self.w2, b, (R, S), self.stride, self.padding, self.dilation,
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
            dx, dw = conv_images._images_backward(self.x, self.w, self.w2, g, self.stride, self.padding,
                                      self.dilation, need_x, need_w)
        elif self.algorithm == "tiled":
            dx, dw = conv_tiled._tiled_backward(self.x, self.w, self.w2, g, self.stride, self.padding,
                                     self.dilation, need_x, need_w, self.phases)
        else:
            dx, dw = self._im2col_backward(g, need_x, need_w)
        dw = dw.reshape(self.w.shape) if dw is not None else None
        return (dx, dw, db) if self.has_bias else (dx, dw)

    # ---- the reference path: im2col (N, C*R*S, Ho*Wo) and a batched GEMM ---------------
    def _im2col_forward(self, x):
        xp = array_module(x)
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
    N, C, Ho, Wo = x_read.shape
    return array_module(x_read).matmul(w2, x_read.reshape(N, C, Ho * Wo)).reshape(N, w2.shape[0], Ho, Wo)


def _pointwise_backward(x_shape, x_read, w2, g, stride, need_x, need_w):
    xp = array_module(g)
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


def _weight_grad(g3, col):
    """dW = Σ over images n of g3[n] (K, P) @ col[n]ᵀ (P, Q) -> (K, Q): a batched GEMM that reads
    col where it lies, then a sum of N small (K, Q) products. (tensordot would first copy col, on a
    GPU often the step's largest array, into an (N*P, Q) matrix for one long GEMM.)"""
    return array_module(g3).matmul(g3, col.transpose(0, 2, 1)).sum(axis=0)
