"""The CUDA convolution: im2col kernels and cuBLAS strided-batched GEMMs (kernels/gemm.py), with no
hidden copies -- dW reads the column matrix transposed by a flag and adds into one (K, Q)
buffer; the weight matrix broadcasts over the images by a batch stride of 0 (no pointer
arrays) -- and column matrices built a chunk of images at a time under COLUMN_CAP_BYTES, so the
memory pool holds a few column-buffer sizes instead of one per layer and batch. At stride 1, dx
is a convolution of gy with the flipped kernel (choices.dx_as_convolution): the im2col kernel
runs 2-3x faster than col2im's gather, for a GEMM of the same size. 1x1 convolutions without
padding need no columns at all (CudaPointwiseConv2d). The results are the reference's
(ops/conv.py), up to the GEMMs' summation order.

Shapes: x (N, C, H, W), w (K, C, R, S), w2 = w as (K, Q = C*R*S), gy (N, K, Ho, Wo).
"""
from ..backend import array_module, cuda_kernels
from ..ops.conv import Conv2d
from ..ops.fast.choices import dx_as_convolution, flipped_weights
from ..ops.fast.conv_pointwise import PointwiseConv2d

COLUMN_CAP_BYTES = 128 * 2 ** 20  # at most this much column matrix at a time


class CudaConv2d(Conv2d):
    """Conv2d on CUDA arrays: the im2col kernel and cuBLAS, a chunk of images at a time."""

    def forward(self, x, w, b=None):
        win = self.setup(x, w, b)
        y = im2col_forward(x, self.w2, win)
        if b is not None:
            y += b.reshape(1, w.shape[0], 1, 1)
        return y

    def backward(self, gy):
        x, w, win = self.x, self.w, self.window
        dx_window = dx_as_convolution("cuda", win, w.size, gy.size)
        dx, dw = im2col_backward(x, w, self.w2, gy, win, self.needs_input_grad[0],
                                 self.needs_input_grad[1], dx_window)
        return self.gradients(gy, dx, dw)


class CudaPointwiseConv2d(PointwiseConv2d):
    """PointwiseConv2d with its GEMMs in cuBLAS: transposes by flag, the weight broadcast by a
    batch stride of 0."""

    @staticmethod
    def gemm(a, b, trans_a=False, trans_b=False):
        return _gemm().batched_matmul(a, b, trans_a=trans_a, trans_b=trans_b)

    def weight_grad(self, gy3, x3):
        """dW into one (K, C) buffer, no (N, K, C) temporary of per-image products to sum: ONE
        GEMM with k = N·Ho·Wo where copies of gy and x with their images side by side are
        smaller than the products would be (small maps), else a GEMM per image added up with
        beta = 1."""
        (_, K, P), C = gy3.shape, x3.shape[1]
        if (K + C) * P < K * C:
            return self.gemm(side_by_side(gy3), side_by_side(x3), trans_b=True)
        dw = array_module(gy3).empty((1, K, C), dtype=gy3.dtype)
        return add_products(dw, gy3, x3, accumulate=False)


def _gemm():
    return cuda_kernels("gemm")


def side_by_side(a3):
    """(N, R, P) -> (R, N·P): the images side by side along the columns (no copy for one image)."""
    N, R, P = a3.shape
    return array_module(a3).ascontiguousarray(a3.transpose(1, 0, 2)).reshape(R, N * P)


def _chunks(n_images, bytes_per_image):
    return _gemm().image_chunks(n_images, bytes_per_image, COLUMN_CAP_BYTES)


def im2col_forward(x, w2, win):
    """y = W @ im2col(x) for a geometry.Window ``win``, a chunk of images at a time."""
    xp, gemm, kernels = array_module(x), _gemm(), cuda_kernels()
    N, (K, Q), P = x.shape[0], w2.shape, win.Ho * win.Wo
    y = xp.empty((N, K, P), dtype=x.dtype)
    for a, b in _chunks(N, Q * P * x.itemsize):
        col = kernels.im2col_gpu(x[a:b], win).reshape(b - a, Q, P)
        gemm.batched_matmul(w2, col, out=y[a:b])
        del col
    return y.reshape(N, K, win.Ho, win.Wo)


def im2col_backward(x, w, w2, gy, win, need_x, need_w, dx_window):
    """(dx, dw as (K, Q)). ``dx_window``: the Window of dx as a stride-1 convolution of gy with the
    flipped kernel (choices.dx_as_convolution), or None for col2im."""
    N, K = gy.shape[:2]
    gy3 = array_module(gy).ascontiguousarray(gy).reshape(N, K, win.Ho * win.Wo)
    dw = _weight_grad(x, w2, gy3, win) if need_w else None
    dx = None
    if need_x and dx_window is not None:
        dx = _input_grad_as_convolution(x, w, gy3, win, dx_window)
    elif need_x:
        dx = _input_grad_col2im(x, w, w2, gy3, win)
    return dx, dw


def _weight_grad(x, w2, gy3, win):
    """dW = Σ over images of gy·colᵀ into one (K, Q) buffer, col rebuilt a chunk at a time; no
    (images, K, Q) temporary of per-image products to sum. Small maps (Ho·Wo < Q): per chunk ONE
    GEMM with k = images·Ho·Wo, the columns built side by side (im2col's "columns" layout)
    against a copy of gy's chunk as (K, images·Ho·Wo), smaller than one product; large maps: a
    GEMM per image, big enough to fill the GPU, added up with beta = 1 and no copy."""
    xp, gemm, kernels = array_module(gy3), _gemm(), cuda_kernels()
    N, (K, Q), P = x.shape[0], w2.shape, win.Ho * win.Wo
    dw = xp.empty((1, K, Q), dtype=gy3.dtype)
    for i, (a, b) in enumerate(_chunks(N, Q * P * gy3.itemsize)):
        if P < Q:
            col = kernels.im2col_gpu(x[a:b], win, "columns").reshape(Q, (b - a) * P)
            gemm.batched_matmul(side_by_side(gy3[a:b]), col, trans_b=True, out=dw,
                                accumulate=i > 0)
        else:
            col = kernels.im2col_gpu(x[a:b], win).reshape(b - a, Q, P)
            add_products(dw, gy3[a:b], col, accumulate=i > 0)
        del col
    return dw


def add_products(dw, gy3, col3, accumulate):
    """dw (1, K, Q) = [dw +] Σ over images n of gy3[n] @ col3[n]ᵀ: a GEMM per image with beta = 1
    after the first."""
    for n in range(gy3.shape[0]):
        _gemm().batched_matmul(gy3[n], col3[n], trans_b=True, out=dw,
                               accumulate=accumulate or n > 0)
    return dw


def _input_grad_as_convolution(x, w, gy3, win, dx_window):
    """dx as the stride-1 convolution of gy over ``dx_window`` with the flipped kernel."""
    xp, gemm, kernels = array_module(gy3), _gemm(), cuda_kernels()
    K, C, R, S = w.shape
    N, P = x.shape[0], dx_window.Ho * dx_window.Wo
    wf = flipped_weights(w)  # (C, K*R*S)
    dx = xp.empty((N, C, P), dtype=gy3.dtype)
    for a, b in _chunks(N, K * R * S * P * gy3.itemsize):
        gcol = kernels.im2col_gpu(gy3[a:b].reshape(b - a, K, win.Ho, win.Wo), dx_window)
        gemm.batched_matmul(wf, gcol.reshape(b - a, K * R * S, P), out=dx[a:b])
        del gcol
    return dx.reshape(x.shape)


def _input_grad_col2im(x, w, w2, gy3, win):
    """dx = col2im(Wᵀ @ gy), a chunk of images at a time."""
    xp, gemm, kernels = array_module(gy3), _gemm(), cuda_kernels()
    K, C, R, S = w.shape
    N, P, Q = x.shape[0], win.Ho * win.Wo, C * R * S
    parts = []
    for a, b in _chunks(N, Q * P * gy3.itemsize):
        dcol = gemm.batched_matmul(w2, gy3[a:b], trans_a=True)
        dcol = dcol.reshape(b - a, C, R, S, win.Ho, win.Wo)
        parts.append(kernels.col2im_gpu(dcol, (b - a,) + tuple(x.shape[1:]), win))
        del dcol
    return parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)
