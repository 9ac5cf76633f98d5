"""The CUDA convolution: im2col kernels and cuBLAS strided-batched GEMMs (kernels/gemm.py), with no
hidden copies -- dW reads the column matrix transposed by a flag, the weight matrix broadcasts over
the images by a batch stride of 0 (no pointer arrays) -- and column matrices built a chunk of
images at a time under COLUMN_CAP_BYTES, so the memory pool holds a few column-buffer sizes
instead of one per layer and batch. ops/conv.py calls these for the "cuda" path and for 1x1
convolutions on CUDA arrays; the results are the reference's, up to the GEMMs' summation order.

Shapes: x (N, C, H, W), w (K, C, R, S), w2 = w as (K, Q = C*R*S), g (N, K, Ho, Wo).
"""
from ..backend import array_module, cuda_kernels
from ..ops.fast.choices import flipped_weights

COLUMN_CAP_BYTES = 128 * 2 ** 20  # the model: <= 128 MiB of column matrix at a time


def _gemm():
    return cuda_kernels("gemm")


def _chunks(n_images, bytes_per_image):
    return _gemm().image_chunks(n_images, bytes_per_image, COLUMN_CAP_BYTES)


def im2col_forward(x, w2, g):
    """y = W @ im2col(x) for a geometry.Window ``g``, a chunk of images at a time."""
    xp, gemm, k = array_module(x), _gemm(), cuda_kernels()
    N, (K, Q), P = x.shape[0], w2.shape, g.Ho * g.Wo
    y = xp.empty((N, K, P), dtype=x.dtype)
    for a, b in _chunks(N, Q * P * x.itemsize):
        col = k.im2col_gpu(x[a:b], g).reshape(b - a, Q, P)
        gemm.batched_matmul(w2, col, out=y[a:b])
        del col
    return y.reshape(N, K, g.Ho, g.Wo)


def im2col_backward(x, w, w2, gy, g, need_x, need_w, gx):
    """(dx, dw as (K, Q)). ``gx``: the Window of dx as a stride-1 convolution of gy with the flipped
    kernel (choices.dx_as_convolution), or None for col2im."""
    xp, gemm, k = array_module(gy), _gemm(), cuda_kernels()
    K, C, R, S = w.shape
    N, P, Q = gy.shape[0], g.Ho * g.Wo, C * R * S
    g3 = xp.ascontiguousarray(gy).reshape(N, K, P)
    dw = None
    if need_w:
        for a, b in _chunks(N, Q * P * gy.itemsize):
            col = k.im2col_gpu(x[a:b], g).reshape(b - a, Q, P)
            part = gemm.batched_matmul(g3[a:b], col, trans_b=True).sum(axis=0)  # over the chunk's images
            dw = part if dw is None else dw.__iadd__(part)
            del col
    dx = None
    if need_x and gx is not None:
        wf = flipped_weights(w)  # (C, K*R*S)
        dx = xp.empty((N, C, gx.Ho * gx.Wo), dtype=gy.dtype)
        for a, b in _chunks(N, K * R * S * gx.Ho * gx.Wo * gy.itemsize):
            gcol = k.im2col_gpu(g3[a:b].reshape(b - a, K, g.Ho, g.Wo), gx)
            gemm.batched_matmul(wf, gcol.reshape(b - a, K * R * S, gx.Ho * gx.Wo), out=dx[a:b])
            del gcol
        dx = dx.reshape(x.shape)
    elif need_x:
        parts = []
        for a, b in _chunks(N, Q * P * gy.itemsize):
            dcol = gemm.batched_matmul(w2, g3[a:b], trans_a=True).reshape(b - a, C, R, S, g.Ho, g.Wo)
            parts.append(k.col2im_gpu(dcol, (b - a,) + tuple(x.shape[1:]), g))
            del dcol
        dx = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=0)
    return dx, dw


def pointwise_forward(x_read, w2):
    N, C, Ho, Wo = x_read.shape
    return _gemm().batched_matmul(w2, x_read.reshape(N, C, Ho * Wo)).reshape(N, w2.shape[0], Ho, Wo)


def pointwise_backward(x_shape, x_read, w2, g, stride, need_x, need_w):
    xp, gemm = array_module(g), _gemm()
    N, C, Ho, Wo = x_read.shape
    K = g.shape[1]
    g3 = xp.ascontiguousarray(g).reshape(N, K, Ho * Wo)
    dx = dw = None
    if need_x:
        dx_read = gemm.batched_matmul(w2, g3, trans_a=True).reshape(N, C, Ho, Wo)
        if stride == (1, 1):
            dx = dx_read
        else:
            dx = xp.zeros(x_shape, dtype=g.dtype)
            dx[:, :, ::stride[0], ::stride[1]] = dx_read
    if need_w:
        dw = gemm.batched_matmul(g3, x_read.reshape(N, C, Ho * Wo), trans_b=True).sum(axis=0)
    return dx, dw
