"""Step 5 - convolution through im2col: copy every receptive field into a column, and the
convolution is one matrix product; its backward is two more products and col2im.

Output pixel (oy, ox) of a convolution with kernel tap (i, j) reads the input pixel

    y = oy*sh - ph + i*dh,    x = ox*sw - pw + j*dw     (zero where it falls in the padding)

``im2col`` puts those reads in ``col`` of shape (N, C, kh, kw, Ho, Wo): for a fixed tap
(i, j) they are one strided slice of the (padded) input, so the loop runs over the taps
only. ``col2im`` is its adjoint: it adds every column entry back onto the pixel it was
read from, which is exactly the backward of the copy. tinygrad_yolo/ops/im2col.py is the
project's version (it avoids materialising the padding; the idea is the same).
"""
import numpy as np

from tinygrad_yolo.function import Function


def pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def output_size(size, k, s, p, d):
    """Output length along one axis: the last window starts by size + 2p - d(k - 1) - 1."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col(x, kh, kw, stride=1, padding=0, dilation=1):
    """(N, C, H, W) -> (N, C, kh, kw, Ho, Wo): col[n, c, i, j, oy, ox] = x[n, c, y, x] as above."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, kh, sh, ph, dh), output_size(W, kw, sw, pw, dw)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    col = np.empty((N, C, kh, kw, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw  # where tap (i, j) of output (0, 0) reads, in the padded image
            rows = slice(y0, y0 + sh * (Ho - 1) + 1, sh)
            cols = slice(x0, x0 + sw * (Wo - 1) + 1, sw)
            col[:, :, i, j] = padded[:, :, rows, cols]
    return col


def col2im(col, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """The adjoint of im2col: sum every entry of ``col`` onto the input pixel it came from."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    N, C, H, W = x_shape
    Ho, Wo = col.shape[-2:]
    padded = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            # within one tap no pixel is read twice, so += on the slice is exact
            rows = slice(y0, y0 + sh * (Ho - 1) + 1, sh)
            cols = slice(x0, x0 + sw * (Wo - 1) + 1, sw)
            padded[:, :, rows, cols] += col[:, :, i, j]
    return padded[:, :, ph:ph + H, pw:pw + W]


class Conv2d(Function):
    """Inputs (x, w) or (x, w, b): x (N, C, H, W), w (K, C, kh, kw), b (K,)."""

    def __init__(self, stride=1, padding=0, dilation=1):
        self.stride, self.padding, self.dilation = pair(stride), pair(padding), pair(dilation)

    def forward(self, x, w, b=None):
        N = x.shape[0]
        K, C, kh, kw = w.shape
        col = im2col(x, kh, kw, self.stride, self.padding, self.dilation)
        Ho, Wo = col.shape[-2:]
        self.x_shape, self.w, self.has_bias = x.shape, w, b is not None
        self.col = col.reshape(N, C * kh * kw, Ho * Wo)
        y = np.matmul(w.reshape(K, -1), self.col)                 # (N, K, Ho*Wo)
        if b is not None:
            y = y + b.reshape(1, K, 1)
        return y.reshape(N, K, Ho, Wo)

    def backward(self, g):
        N, K = g.shape[:2]
        _, C, kh, kw = self.w.shape
        g3 = g.reshape(N, K, -1)
        dw = np.einsum("nkp,nqp->kq", g3, self.col).reshape(self.w.shape)    # sum over n of gy colᵀ
        dcol = np.matmul(self.w.reshape(K, -1).T, g3)          # Wᵀ gy: (N, C*kh*kw, Ho*Wo)
        dx = col2im(dcol.reshape(N, C, kh, kw, *g.shape[2:]), self.x_shape, kh, kw, self.stride,
                    self.padding, self.dilation)
        if self.has_bias:
            return dx, dw, g.sum(axis=(0, 2, 3))
        return dx, dw
