"""conv2d's "images" CPU path (large maps): per-image im2col, straight from and into NCHW."""
import numpy as np

from ..workspace import scratch
from . import conv_tiled
from .choices import _dx_conv_padding, _flipped_weights
from .conv_tiled import _col2im_rows, _im2col_rows
from .phases import merge_stride_phases, stride_phases

IMAGE_TILES_MIN_PIXELS = 784  # output maps of 28x28 and more: the "images" algorithm
WIDE_MAX_JUNK = 1 / 8  # stride-1 "images" convs compute at the row pitch if it adds at most this


# ---- the images CPU path: per-image im2col, straight from and into NCHW ------------------------
def _image_groups(N, q, pixels, itemsize):
    """Split the batch into groups of images whose im2col (q x pixels each) fills about TILE_BYTES."""
    per = max(1, conv_tiled.TILE_BYTES // max(1, q * pixels * itemsize))
    n = -(-N // per)
    per = -(-N // n)  # even groups
    return [(a, min(N, a + per)) for a in range(0, N, per)]


def _images_im2col(x, a, b, padding, geometry, out_hw):
    """The im2col matrices of images a..b of x (N, C, H, W): a scratch (b - a, C*R*S, Ho*Wo).
    Each image is padded (and split into stride phases) on its own -- the batch-last machinery
    with a batch of one, whose layout (C, H, W, 1) is the image's own."""
    (R, S), (Ho, Wo), C = geometry[0], out_hw, x.shape[1]
    col = scratch("conv.col", (b - a, C, R, S, Ho, Wo, 1), x.dtype)
    for i in range(b - a):
        _im2col_rows(col[i], stride_phases("conv.x", x[a + i][..., None], padding, geometry), geometry, 0, Ho)
    return col.reshape(b - a, C * R * S, Ho * Wo)


def _wide_pitch(W, pw, out_w):
    """Row pitch of _WideColumns' flat image: W + pw (one shared run of padding between rows),
    or the output width where padding wider than the kernel's reach makes that wider."""
    return max(W + pw, out_w)


def _wide_im2col_ok(geometry, padding, in_w, out_hw):
    """Stride 1, and a map wide enough that the row pitch adds few junk columns."""
    return geometry[1] == (1, 1) and _wide_pitch(in_w, padding[1], out_hw[1]) - out_hw[1] <= WIDE_MAX_JUNK * out_hw[1]


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

    def __init__(self, shape, padding, geometry, dtype):
        C, H, W = shape
        (R, S), _, (dh, dw) = geometry
        (ph, pw) = padding
        Hp = H + 2 * ph
        Wp = _wide_pitch(W, pw, W + 2 * pw - dw * (S - 1))
        self.Ho, self.Wp, self.pad = Hp - dh * (R - 1), Wp, (ph, pw)
        plane, slack = C * Hp * Wp, (S - 1) * dw
        flat = scratch("conv.flat", (plane + slack,), dtype)
        flat.fill(0)  # padding and slack; images only ever overwrite the pixels
        self.image = flat[:plane].reshape(C, Hp, Wp)
        step = flat.itemsize
        self.taps = np.lib.stride_tricks.as_strided(
            flat, (C, R, S, self.Ho * Wp), (Hp * Wp * step, dh * Wp * step, dw * step, step), writeable=False)
        self.col = scratch("conv.col", (C * R * S, self.Ho * Wp), dtype)

    def of(self, image):
        """The (C*R*S, Ho*Wp) im2col matrix of one (C, H, W) image (a scratch buffer)."""
        ph, pw = self.pad
        self.image[:, ph:ph + image.shape[1], pw:pw + image.shape[2]] = image
        np.copyto(self.col.reshape(self.taps.shape), self.taps)
        return self.col


def _images_conv(x, w2, padding, geometry, out):
    """out (N, K, Ho, Wo) = w2 (K, C*R*S) @ each image's im2col matrix, a group at a time."""
    N, K, Ho, Wo = out.shape
    if _wide_im2col_ok(geometry, padding, x.shape[3], (Ho, Wo)):
        columns = _WideColumns(x.shape[1:], padding, geometry, x.dtype)
        y_wide = scratch("conv.y", (K, Ho, columns.Wp), x.dtype)
        for n in range(N):
            np.matmul(w2, columns.of(x[n]), out=y_wide.reshape(K, -1))
            out[n] = y_wide[:, :, :Wo]
        return out
    for a, b in _image_groups(N, w2.shape[1], Ho * Wo, x.itemsize):
        col = _images_im2col(x, a, b, padding, geometry, (Ho, Wo))
        np.matmul(w2, col, out=out[a:b].reshape(b - a, K, Ho * Wo))
    return out


def _images_backward(x, w, w2, g, stride, padding, dilation, need_x, need_w):
    """(dx, dW) of the images path: the _tiled_backward products, one group of images at a time."""
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    _, _, Ho, Wo = g.shape
    (ph, pw) = padding
    geometry, q = ((R, S), stride, dilation), C * R * S
    g3 = np.ascontiguousarray(g).reshape(N, K, Ho * Wo)
    groups = _image_groups(N, q, Ho * Wo, x.itemsize)
    dw = dx = None

    if need_w and _wide_im2col_ok(geometry, padding, W, (Ho, Wo)):  # as below, at the wide row pitch
        columns = _WideColumns((C, H, W), padding, geometry, x.dtype)
        g_wide = scratch("conv.gy", (K, Ho, columns.Wp), x.dtype)
        g_wide[:, :, Wo:] = 0  # the junk columns must not reach dW
        dwt, part = np.zeros((q, K), dtype=x.dtype), scratch("conv.dw_part", (q, K), x.dtype)
        for n in range(N):
            g_wide[:, :, :Wo] = g[n]
            np.matmul(columns.of(x[n]), g_wide.reshape(K, -1).T, out=part)
            dwt += part
        dw = dwt.T.copy()
    elif need_w:  # dWᵀ = sum over images of col @ gyᵀ (this orientation suits OpenBLAS with few K)
        dwt = np.zeros((q, K), dtype=x.dtype)
        for a, b in groups:
            col = _images_im2col(x, a, b, padding, geometry, (Ho, Wo))
            parts = scratch("conv.dw_part", (b - a, q, K), x.dtype)
            np.matmul(col, g3[a:b].transpose(0, 2, 1), out=parts)
            dwt += parts.sum(axis=0)
        dw = dwt.T.copy()

    if need_x:
        dx = np.empty(x.shape, dtype=x.dtype)
        as_conv = _dx_conv_padding((R, S), stride, padding, dilation)
        if as_conv is not None:  # dx as a convolution of gy (_dx_conv_padding)
            _images_conv(g, _flipped_weights(w), as_conv, geometry, dx)
        else:  # col2im, image by image
            dphases = scratch("conv.dx", (C,) + stride + (-(-(H + 2 * ph) // stride[0]),
                                                          -(-(W + 2 * pw) // stride[1]), 1), x.dtype)
            for a, b in groups:
                dcol = scratch("conv.col", (b - a, C, R, S, Ho, Wo, 1), x.dtype)
                np.matmul(w2.T, g3[a:b], out=dcol.reshape(b - a, q, Ho * Wo))
                for i in range(b - a):
                    dphases.fill(0)
                    _col2im_rows(dphases, dcol[i], geometry, 0, Ho)
                    merge_stride_phases(dphases, (1, C, H, W), padding, stride, out=dx[a + i:a + i + 1])
    return dx, dw
