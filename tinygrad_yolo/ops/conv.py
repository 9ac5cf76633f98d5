"""2-D convolution: x (N, C, H, W), weight (K, C, R, S), optional bias (K,) -> y (N, K, Ho, Wo).

    y[n, k, oy, ox] = b[k] + Σ over c, r, s of  w[k, c, r, s] · x[n, c, oy·sh - ph + r·dh,
                                                                    ox·sw - pw + s·dw]

(x is zero outside the image; ops/geometry.py checks the arguments and computes Ho, Wo.)
Writing every receptive field as a column ("im2col", ops/im2col.py) turns this into one matrix
product per image, with the weight as a (K, C*R*S) matrix W:

    col[n] = im2col(x[n])   (C*R*S, Ho*Wo)         y[n] = W @ col[n]

and the backward into two more, by the rule for a matrix product:

    dW = Σ_n gy[n] @ col[n]ᵀ        dcol[n] = Wᵀ @ gy[n],  dx[n] = col2im(dcol[n])

where col2im, the adjoint of im2col, adds every column entry back onto the pixel it was read
from. ``Conv2d`` below is exactly that, on NumPy and CuPy arrays alike, and it is what the tests
compare every other path with. col is R*S times the input's size, so it is not kept for
backward: dW rebuilds it from x (as Caffe does). Kept for every conv, the columns would be about
half of a training step's GPU memory; rebuilding them costs one im2col, a fraction of the GEMM
it feeds.

The speed lives in subclasses of Conv2d, each checked against it: ops/fast/ for the CPU (the
im2col matrix in cache-sized pieces, never whole; 1x1 convolutions without one) and
cuda/conv.py for CUDA (cuBLAS without hidden copies, columns in chunks). tinygrad_yolo/dispatch.py
picks one per call.
"""
from ..amp.autocast import AutocastGemm
from ..backend import array_module
from ..function import Function
from .geometry import conv_window, int_pair
from .im2col import col2im_window, im2col_window


class Conv2d(AutocastGemm, Function):  # AutocastGemm: the operands' rounding under tg.autocast
    """Inputs (x, w) or (x, w, b)."""
    name = "Conv2d"  # what graphs, the profiler and errors call it, whichever path (subclass) runs

    def __init__(self, stride=1, padding=0, dilation=1):
        self.stride = int_pair(stride, "stride", "conv2d")
        self.padding = int_pair(padding, "padding", "conv2d", minimum=0)
        self.dilation = int_pair(dilation, "dilation", "conv2d")

    def forward(self, x, w, b=None):
        win = self.setup(x, w, b)
        N, K, P = x.shape[0], w.shape[0], win.Ho * win.Wo
        col = im2col_window(x, win).reshape(N, self.w2.shape[1], P)  # (N, C*R*S, Ho*Wo)
        y = array_module(x).matmul(self.w2, col).reshape(N, K, win.Ho, win.Wo)
        if b is not None:
            y += b.reshape(1, K, 1, 1)
        return y

    def backward(self, gy):
        x, w2, win = self.x, self.w2, self.window
        xp = array_module(gy)
        N, K, P = gy.shape[0], w2.shape[0], win.Ho * win.Wo
        gy3 = gy.reshape(N, K, P)
        dx = dw = None
        if self.needs_input_grad[1]:
            col = im2col_window(x, win).reshape(N, w2.shape[1], P)
            # one batched GEMM that reads col where it lies, then a sum of N small (K, C*R*S)
            # products (tensordot would first copy col into one long (N*P, C*R*S) matrix)
            dw = xp.matmul(gy3, col.transpose(0, 2, 1)).sum(axis=0)
            del col  # the largest array of the step: gone before dcol is made
        if self.needs_input_grad[0]:
            dcol = xp.matmul(w2.T, gy3).reshape(x.shape[:2] + (win.kh, win.kw, win.Ho, win.Wo))
            dx = col2im_window(dcol, x.shape, win)
        return self.gradients(gy, dx, dw)

    # ---- what every path shares: the checks, what backward keeps, the bias's gradient ----------
    def setup(self, x, w, b):
        """Check the call (dtypes, shapes, window), keep x, w and the weight as the (K, C*R*S)
        matrix ``w2`` for backward, and return the call's geometry.Window."""
        if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
            raise TypeError(f"conv2d: input, weight and bias must share a dtype, got {x.dtype}, "
                            f"{w.dtype}" + (f", {b.dtype}" if b is not None else ""))
        self.window = conv_window(x.shape, w.shape, None if b is None else b.shape, self.stride,
                                  self.padding, self.dilation)
        K, C, R, S = w.shape
        self.x, self.w, self.has_bias = x, w, b is not None
        self.w2 = w.reshape(K, C * R * S)  # a view when w is contiguous
        return self.window

    def gradients(self, gy, dx, dw):
        """backward's result from dx and dW (any shape of w's size): (dx, dw) or (dx, dw, db)."""
        dw = None if dw is None else dw.reshape(self.w.shape)
        if not self.has_bias:
            return dx, dw
        return dx, dw, gy.sum(axis=(0, 2, 3)) if self.needs_input_grad[2] else None
