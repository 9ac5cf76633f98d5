"""2-D convolution: x (N, C, H, W), weight (K, C, R, S), optional bias (K,) -> y (N, K, Ho, Wo).

    y[n, k, oy, ox] = b[k] + sum over c, r, s of  w[k, c, r, s] * x[n, c, oy*sh - ph + r*dh, ox*sw - pw + s*dw]

(x is zero outside the image; ops/geometry.py checks the arguments and computes Ho, Wo.)
Writing every receptive field as a column ("im2col", ops/im2col.py) turns this into one matrix
product per image, with the weight as a (K, C*R*S) matrix W:

    col[n] = im2col(x[n])   (C*R*S, Ho*Wo)         y[n] = W @ col[n]

and the backward into two more, by the rule for a matrix product:

    dW = Σ_n gy[n] @ col[n]ᵀ        dcol[n] = Wᵀ @ gy[n],  dx[n] = col2im(dcol[n])

where col2im, the adjoint of im2col, adds every column entry back onto the pixel it was read
from. ``reference_forward`` and ``reference_backward`` below are exactly that; they run on
CUDA (with the kernels in kernels/), on NumPy with ``algorithm="im2col"``, and they are what the
tests compare every other path with. col is R*S times the input's size, so it is not kept for
backward: dW rebuilds it from x (as Caffe does) -- kept for every conv, the columns came to
about half of a training step's GPU memory, and rebuilding costs one im2col kernel, a fraction
of the GEMM it feeds.

The speed lives in ops/fast/, one idea per module, each checked against this reference:
conv_tiled.py and conv_images.py (the CPU paths for small and large maps: the im2col matrix
in cache-sized pieces, never whole), cuda_conv.py (conv2d on CUDA: cuBLAS strided-batched GEMMs without hidden copies, columns
in chunks, dx as a convolution of gy at stride 1), and
choices.py (which path runs, whether dx is a convolution, which way dW's GEMM goes: each
decided once, for every path). A 1x1 convolution without padding needs no im2col at all on
either device: x itself is the column matrix (``pointwise_forward``).
"""
import numpy as np

from ..backend import array_module, cuda_kernels
from ..function import Function
from .fast.choices import conv_path, dx_as_convolution
from .fast.conv_images import images_backward, images_conv
from .fast.conv_tiled import tiled_backward, tiled_forward
from ..cuda import conv as cuda_conv
from .geometry import conv_window, int_pair
from .im2col import col2im_window, im2col_window

ALGORITHMS = ("tiled", "images", "im2col")


# ---- the reference: im2col and one GEMM forward, two GEMMs and a col2im backward ----------------
def reference_forward(x, w2, g):
    """y = W @ col, a batched GEMM over the images; ``g`` is the call's geometry.Window."""
    xp = array_module(x)
    to_col, _ = im2col_functions(xp)
    N, K, P = x.shape[0], w2.shape[0], g.Ho * g.Wo
    col = to_col(x, g).reshape(N, w2.shape[1], P)  # (N, C*R*S, Ho*Wo)
    return xp.matmul(w2, col).reshape(N, K, g.Ho, g.Wo)


def reference_backward(x, w2, gy, g, need_x, need_w):
    """(dx, dW): dW = gy @ colᵀ with col rebuilt from x, dx = col2im(Wᵀ @ gy)."""
    xp = array_module(gy)
    to_col, to_im = im2col_functions(xp)
    N, K, P = gy.shape[0], w2.shape[0], g.Ho * g.Wo
    gy3 = gy.reshape(N, K, P)
    dx = dw = None
    if need_w:
        col = to_col(x, g).reshape(N, w2.shape[1], P)
        dw = weight_grad(gy3, col)
        del col  # the largest array of the step: gone before dcol is made
    if need_x:
        dcol = xp.matmul(w2.T, gy3).reshape(x.shape[:2] + (g.kh, g.kw, g.Ho, g.Wo))
        dx = to_im(dcol, x.shape, g)
    return dx, dw


def weight_grad(gy3, col):
    """dW = Σ over images n of gy3[n] (K, P) @ col[n]ᵀ (P, Q) -> (K, Q): a batched GEMM that reads
    col where it lies, then a sum of N small (K, Q) products. (tensordot would first copy col, on a
    GPU often the step's largest array, into an (N*P, Q) matrix for one long GEMM.)"""
    return array_module(gy3).matmul(gy3, col.transpose(0, 2, 1)).sum(axis=0)


def im2col_functions(xp):
    """(im2col, col2im) taking a geometry.Window: ops/im2col.py on NumPy, kernels/ on CUDA."""
    if xp is np:
        return im2col_window, col2im_window
    kernels = cuda_kernels()  # compiled with CuPy on first use
    return kernels.im2col_gpu, kernels.col2im_gpu


# ---- the op -------------------------------------------------------------------------------------
class Conv2d(Function):
    """Inputs (x, w) or (x, w, b). ``algorithm`` None lets choices.conv_path pick ("im2col" on
    CUDA; on NumPy "images" for large output maps, "tiled" for small ones); "im2col" on NumPy
    runs the reference (tests compare all three)."""

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
        g = conv_window(x.shape, w.shape, None if b is None else b.shape, self.stride, self.padding,
                        self.dilation)
        xp = array_module(x)
        K, C, R, S = w.shape
        self.x, self.w, self.has_bias, self.window = x, w, b is not None, g
        self.w2 = w.reshape(K, C * R * S)  # a view when w is contiguous
        pointwise = (R, S) == (1, 1) and g.padding == (0, 0)
        self.path = conv_path(self.algorithm, xp is not np, g, pointwise)
        self.empty = x.size == 0 or w.size == 0
        if self.empty:  # no images, channels or filters: y is b (a sum over nothing is 0), or empty
            y = xp.zeros((x.shape[0], K, g.Ho, g.Wo), dtype=x.dtype)
            return y + b.reshape(1, K, 1, 1) if b is not None else y
        if self.path == "tiled":  # adds the bias while transposing to NCHW
            y, self.phases = tiled_forward(x, self.w2, b, g, keep_input=self.needs_input_grad[1])
            return y
        if self.path == "images":
            y = images_conv(x, self.w2, g, np.empty((x.shape[0], K, g.Ho, g.Wo), dtype=x.dtype))
        elif self.path == "pointwise":
            self.x_read = subsample(x, g.stride)  # the pixels the 1x1 kernel reads, kept for dW
            y = (pointwise_forward if xp is np else cuda_conv.pointwise_forward)(self.x_read, self.w2)
        elif self.path == "cuda":  # cuBLAS without hidden copies, columns in chunks
            y = cuda_conv.im2col_forward(x, self.w2, g)
        else:  # "im2col": the reference
            y = reference_forward(x, self.w2, g)
        if b is not None:
            y += b.reshape(1, K, 1, 1)
        return y

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = self.has_bias and self.needs_input_grad[2]
        x, w, g, path = self.x, self.w, self.window, self.path
        db = gy.sum(axis=(0, 2, 3)) if need_b else None
        if self.empty:
            xp = array_module(gy)
            dx = xp.zeros(x.shape, dtype=gy.dtype) if need_x else None
            dw = xp.zeros(w.shape, dtype=gy.dtype) if need_w else None
        elif path == "pointwise":
            backward = pointwise_backward if array_module(gy) is np else cuda_conv.pointwise_backward
            dx, dw = backward(x.shape, self.x_read, self.w2, gy, g.stride, need_x, need_w)
        elif path == "cuda":
            dx, dw = cuda_conv.im2col_backward(x, w, self.w2, gy, g, need_x, need_w,
                                              dx_as_convolution(path, g, w.size, gy.size))
        elif path == "images":
            dx, dw = images_backward(x, w, self.w2, gy, g, need_x, need_w)
        elif path == "tiled":
            dx, dw = tiled_backward(x, w, self.w2, gy, g, need_x, need_w, self.phases)
        else:  # "im2col": the reference
            dx, dw = reference_backward(x, self.w2, gy, g, need_x, need_w)
        dw = dw.reshape(w.shape) if dw is not None else None
        return (dx, dw, db) if self.has_bias else (dx, dw)


# ---- 1x1, no padding: x (N, C, H*W) is already the column matrix -----------------------------
# With a stride (the projection shortcuts of ResNet), first keep the pixels the kernel reads.
def subsample(x, stride):
    if stride == (1, 1):
        return x
    return array_module(x).ascontiguousarray(x[:, :, ::stride[0], ::stride[1]])


def pointwise_forward(x_read, w2):
    N, C, Ho, Wo = x_read.shape
    return array_module(x_read).matmul(w2, x_read.reshape(N, C, Ho * Wo)).reshape(N, w2.shape[0], Ho, Wo)


def pointwise_backward(x_shape, x_read, w2, gy, stride, need_x, need_w):
    xp = array_module(gy)
    N, C, Ho, Wo = x_read.shape
    K = gy.shape[1]
    gy3 = gy.reshape(N, K, Ho * Wo)
    dx = dw = None
    if need_x:
        dx_read = xp.matmul(w2.T, gy3).reshape(N, C, Ho, Wo)  # the gradient of the pixels read
        if stride == (1, 1):
            dx = dx_read
        else:  # the others get none
            dx = xp.zeros(x_shape, dtype=gy.dtype)
            dx[:, :, ::stride[0], ::stride[1]] = dx_read
    if need_w:
        dw = weight_grad(gy3, x_read.reshape(N, C, Ho * Wo))
    return dx, dw
