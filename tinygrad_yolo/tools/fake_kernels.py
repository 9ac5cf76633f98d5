"""NumPy emulations of the kernels in kernels/*.cu, for fake_cupy (same arguments as the launches in
kernels/__init__.py; outputs written in place). They are built on the NumPy reference paths the
host-shim tests compare the .cu sources against, so a step run through fake_cupy computes what the
CPU computes."""
import numpy as np

from ..ops.im2col import col2im, im2col
from .fake_cupy import raw_kernel


@raw_kernel("im2col_kernel")
def _im2col(x, col, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw):
    x4 = x.reshape(1, int(NC), int(H), int(W))
    col.reshape(1, int(NC), int(kh), int(kw), int(Ho), int(Wo))[...] = im2col(
        x4, int(kh), int(kw), (int(sh), int(sw)), (int(ph), int(pw)), (int(dh), int(dw)))


@raw_kernel("col2im_kernel")
def _col2im(col, x, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw):
    c6 = col.reshape(1, int(NC), int(kh), int(kw), int(Ho), int(Wo))
    x.reshape(1, int(NC), int(H), int(W))[...] = col2im(
        c6, (1, int(NC), int(H), int(W)), int(kh), int(kw), (int(sh), int(sw)), (int(ph), int(pw)),
        (int(dh), int(dw)))


def _pool_taps(x, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    xp = np.full((NC, H + 2 * ph, W + 2 * pw), -np.inf, dtype=x.dtype)
    xp[:, ph:ph + H, pw:pw + W] = x.reshape(NC, H, W)
    for r in range(kh):
        for s in range(kw):
            rows = np.arange(Ho) * sh + r - ph
            cols = np.arange(Wo) * sw + s - pw
            yield xp[:, r:r + sh * (Ho - 1) + 1:sh, s:s + sw * (Wo - 1) + 1:sw], rows[:, None] * W + cols[None, :]


@raw_kernel("max_pool2d_forward_kernel")
def _max_pool_forward(x, y, argmax, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw = (int(v) for v in (NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw))
    best = np.full((NC, Ho, Wo), -np.inf, dtype=x.dtype)
    where = np.zeros((NC, Ho, Wo), dtype=np.int32)
    for tap, index in _pool_taps(x, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
        wins = tap > best  # strictly greater: the first of ties in scan order
        best = np.where(wins, tap, best)
        where = np.where(wins, index, where).astype(np.int32)
    y.reshape(NC, Ho, Wo)[...] = best
    argmax.reshape(NC, Ho, Wo)[...] = where


@raw_kernel("max_pool2d_backward_kernel")
def _max_pool_backward(gy, argmax, gx, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    NC, H, W = int(NC), int(H), int(W)
    out = np.zeros((NC, H * W), dtype=gy.dtype)
    rows = np.repeat(np.arange(NC), argmax.size // max(NC, 1))
    np.add.at(out, (rows, argmax.reshape(-1)), gy.reshape(-1))
    gx.reshape(NC, H * W)[...] = out
