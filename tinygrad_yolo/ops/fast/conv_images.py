"""conv2d's "images" CPU path, for large output maps (28x28 and more): the im2col matrix of one
image (or a few) at a time, built into a cache-sized scratch buffer straight from NCHW and
multiplied at once; an image's own Ho*Wo columns make a wide enough GEMM when the map is large.
At stride 1 the columns are built at a row pitch of W + pw instead (_WideColumns): one long copy
per image rather than a short one per row, for a few junk columns that are computed and dropped.
"""
import numpy as np

from .workspace import scratch
from . import conv_tiled
from .choices import dw_gemm, dw_transposed, dx_as_convolution, flipped_weights
from .conv_tiled import _col2im_rows, _im2col_rows
from .phases import merge_stride_phases, phases_shape, stride_phases

WIDE_MAX_JUNK = 1 / 8  # stride-1 convs compute at the row pitch if it adds at most this


def _image_groups(N, q, pixels, itemsize):
    """Split the batch into groups of images whose im2col (q x pixels each) fills about TILE_BYTES."""
    per = max(1, conv_tiled.TILE_BYTES // max(1, q * pixels * itemsize))
    n = -(-N // per)
    per = -(-N // n)  # even groups
    return [(a, min(N, a + per)) for a in range(0, N, per)]


def _images_im2col(x, a, b, g):
    """The im2col matrices of images a..b of x (N, C, H, W): a scratch (b - a, C*R*S, Ho*Wo).
    Each image is padded (and split into stride phases) on its own -- the batch-last machinery
    with a batch of one, whose layout (C, H, W, 1) is the image's own."""
    C, geometry = x.shape[1], (g.kernel, g.stride, g.dilation)
    col = scratch("conv.col", (b - a, C, g.kh, g.kw, g.Ho, g.Wo, 1), x.dtype)
    for i in range(b - a):
        _im2col_rows(col[i], stride_phases("conv.x", x[a + i][..., None], g.padding, geometry), geometry, 0, g.Ho)
    return col.reshape(b - a, C * g.kh * g.kw, g.Ho * g.Wo)


def _wide_pitch(W, pw, out_w):
    """Row pitch of _WideColumns' flat image: W + pw (one shared run of padding between rows),
    or the output width where padding wider than the kernel's reach makes that wider."""
    return max(W + pw, out_w)


def _wide_im2col_ok(g):
    """Stride 1, and a map wide enough that the row pitch adds few junk columns."""
    return g.stride == (1, 1) and _wide_pitch(g.W, g.pw, g.Wo) - g.Wo <= WIDE_MAX_JUNK * g.Wo


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

    def __init__(self, C, g, dtype):
        Hp = g.H + 2 * g.ph
        Wp = _wide_pitch(g.W, g.pw, g.Wo)
        self.Ho, self.Wp, self.pad = g.Ho, Wp, g.padding
        plane, slack = C * Hp * Wp, (g.kw - 1) * g.dw
        flat = scratch("conv.flat", (plane + slack,), dtype)
        flat.fill(0)  # padding and slack; images only ever overwrite the pixels
        self.image = flat[:plane].reshape(C, Hp, Wp)
        step = flat.itemsize
        self.taps = np.lib.stride_tricks.as_strided(
            flat, (C, g.kh, g.kw, self.Ho * Wp), (Hp * Wp * step, g.dh * Wp * step, g.dw * step, step),
            writeable=False)
        self.col = scratch("conv.col", (C * g.kh * g.kw, self.Ho * Wp), dtype)

    def of(self, image):
        """The (C*R*S, Ho*Wp) im2col matrix of one (C, H, W) image (a scratch buffer)."""
        ph, pw = self.pad
        self.image[:, ph:ph + image.shape[1], pw:pw + image.shape[2]] = image
        np.copyto(self.col.reshape(self.taps.shape), self.taps)
        return self.col


def images_conv(x, w2, g, out):
    """out (N, K, Ho, Wo) = w2 (K, C*R*S) @ each image's im2col matrix, a group at a time."""
    N, K, Ho, Wo = out.shape
    if _wide_im2col_ok(g):
        columns = _WideColumns(x.shape[1], g, x.dtype)
        y_wide = scratch("conv.y", (K, Ho, columns.Wp), x.dtype)
        for n in range(N):
            np.matmul(w2, columns.of(x[n]), out=y_wide.reshape(K, -1))
            out[n] = y_wide[:, :, :Wo]
        return out
    for a, b in _image_groups(N, w2.shape[1], Ho * Wo, x.itemsize):
        col = _images_im2col(x, a, b, g)
        np.matmul(w2, col, out=out[a:b].reshape(b - a, K, Ho * Wo))
    return out


def images_backward(x, w, w2, gy, g, need_x, need_w):
    """(dx, dW) of the images path: the tiled path's products, one group of images at a time."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    Ho, Wo = g.out_hw
    geometry, q = (g.kernel, g.stride, g.dilation), C * R * S
    g3 = np.ascontiguousarray(gy).reshape(N, K, Ho * Wo)
    groups = _image_groups(N, q, Ho * Wo, x.itemsize)
    dw = dx = None

    if need_w:  # dW = sum over images of gy @ colᵀ, in the orientation dw_transposed picks
        transposed = dw_transposed("images", Ho * Wo)
        acc = np.zeros((q, K) if transposed else (K, q), dtype=x.dtype)
        if _wide_im2col_ok(g):  # at the wide row pitch, image by image
            columns = _WideColumns(C, g, x.dtype)
            g_wide = scratch("conv.gy", (K, Ho, columns.Wp), x.dtype)
            g_wide[:, :, Wo:] = 0  # the junk columns must not reach dW
            part = scratch("conv.dw_part", acc.shape, x.dtype)
            for n in range(N):
                g_wide[:, :, :Wo] = gy[n]
                acc += dw_gemm(columns.of(x[n]), g_wide.reshape(K, -1), transposed, part)
        else:
            for a, b in groups:
                parts = scratch("conv.dw_part", (b - a,) + acc.shape, x.dtype)
                acc += dw_gemm(_images_im2col(x, a, b, g), g3[a:b], transposed, parts).sum(axis=0)
        dw = acc.T.copy() if transposed else acc

    if need_x:
        dx = np.empty(x.shape, dtype=x.dtype)
        gx = dx_as_convolution("images", g, w.size, gy.size)
        if gx is not None:  # dx as a convolution of gy
            images_conv(gy, flipped_weights(w), gx, dx)
        else:  # col2im, image by image
            dphases = scratch("conv.dx", phases_shape((C, H, W, 1), g.padding, g.stride), x.dtype)
            for a, b in groups:
                dcol = scratch("conv.col", (b - a, C, R, S, Ho, Wo, 1), x.dtype)
                np.matmul(w2.T, g3[a:b], out=dcol.reshape(b - a, q, Ho * Wo))
                for i in range(b - a):
                    dphases.fill(0)
                    _col2im_rows(dphases, dcol[i], geometry, 0, Ho)
                    merge_stride_phases(dphases, (1, C, H, W), g.padding, g.stride, out=dx[a + i:a + i + 1])
    return dx, dw
