"""The choices conv2d's paths make inside a call, each made in one place for every path (which
path runs is tinygrad_yolo/dispatch.py's conv2d_path). Two questions, two functions:

* ``dx_as_convolution``: dx by col2im(Wᵀ · gy), as the definition says, or -- at stride 1 --
  as a convolution of gy with the flipped kernel, which reuses the forward's machinery.
* ``dw_transposed``: dW = gy · colᵀ, or its transpose dWᵀ = col · gyᵀ (``dw_gemm``), whichever
  GEMM orientation OpenBLAS runs faster for that shape.

Every answer changes only speed and memory: tests/test_conv.py checks each path, both ways of
each choice, against the loop definitions.
"""
import numpy as np

from ...backend import array_module
from ..geometry import Window

DW_TRANSPOSED_MIN_COLUMNS = 4096  # see dw_transposed


def dx_conv_padding(win):
    """At stride 1 the input gradient is itself a convolution:

        dx[c, i] = sum over k, r of w[k, c, r] * gy[k, i + (R-1-r)*d - q],   q = d(R-1) - p

    a stride-1 convolution of gy, padded by q, with the kernel flipped and its K and C axes
    swapped (flipped_weights). Returns its padding (qh, qw), or None where it doesn't apply (a
    stride, or a padding beyond the kernel's reach)."""
    qh, qw = win.dh * (win.kh - 1) - win.ph, win.dw * (win.kw - 1) - win.pw
    return (qh, qw) if win.stride == (1, 1) and qh >= 0 and qw >= 0 else None


def dx_as_convolution(path, win, w_size, gy_size):
    """The Window of dx's convolution over gy (output: the input's H x W), or None for col2im.

    * "reference": never, the definition's col2im.
    * "cuda": whenever it applies: the im2col kernel runs 2-3x faster than col2im's gather, for
      a GEMM of the same size.
    * "images": whenever it applies: the forward's loop, instead of a col2im image by image.
    * "tiled": where the weights are at most twice gy's size: it copies only gy-sized data, but
      needs a transposed copy of the weights, and where those are much larger than gy (deep
      layers at low resolution) col2im is cheaper."""
    q = dx_conv_padding(win)
    if q is None or path == "reference" or (path == "tiled" and w_size > 2 * gy_size):
        return None
    return Window(win.Ho, win.Wo, win.kh, win.kw, 1, 1, q[0], q[1], win.dh, win.dw, win.H, win.W)


def flipped_weights(w):
    """(K, C, R, S) -> the (C, K*R*S) weight matrix of dx's convolution (dx_conv_padding)."""
    K, C, R, S = w.shape
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return array_module(w).ascontiguousarray(flipped).reshape(C, K * R * S)


def dw_transposed(path, columns):
    """Whether dW is computed transposed, dWᵀ = col · gyᵀ, for GEMMs over ``columns`` pixels.

    * "tiled": with at least DW_TRANSPOSED_MIN_COLUMNS columns (large maps, few channels)
      OpenBLAS runs col · gyᵀ faster, enough to pay for transposing the small result; with
      fewer, it doesn't.
    * "images": always (one image's columns, and few K: the orientation that suits OpenBLAS).
    * "reference", "cuda", "pointwise": never: gy · colᵀ, one batched GEMM."""
    if path == "tiled":
        return columns >= DW_TRANSPOSED_MIN_COLUMNS
    return path == "images"


def dw_gemm(col, gy, transposed, out):
    """One GEMM of dW's sum in the chosen orientation: out (q, K) = col @ gyᵀ if ``transposed``,
    else out (K, q) = gy @ colᵀ (both batched over any leading axis)."""
    if transposed:
        return np.matmul(col, gy.swapaxes(-1, -2), out=out)
    return np.matmul(gy, col.swapaxes(-1, -2), out=out)
