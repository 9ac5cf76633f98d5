"""conv2d's GPU-tuned choice: at stride 1, dx as a convolution of gy (choices.dx_as_convolution).

On CUDA the reference path (ops/conv.py) runs as it is, with kernels/'s im2col and col2im. For dx
at stride 1 it builds the im2col of gy instead of running col2im: the im2col kernel runs 2-3x
faster than col2im's gather, for a GEMM of the same size.
"""
from ...backend import array_module
from .choices import flipped_weights


def dx_by_convolution(gy, w, gx, to_col):
    """dx = flipped W (C, K*R*S) @ im2col(gy) for dx's convolution ``gx`` (a geometry.Window
    whose input is gy's map and whose output is x's); ``to_col(a, window)`` builds the columns
    (kernels.im2col_gpu on CUDA; tests pass the NumPy im2col)."""
    N, K = gy.shape[:2]
    gcol = to_col(gy, gx).reshape(N, K * gx.kh * gx.kw, gx.Ho * gx.Wo)
    dx = array_module(gy).matmul(flipped_weights(w), gcol)
    return dx.reshape(N, w.shape[1], gx.Ho, gx.Wo)
