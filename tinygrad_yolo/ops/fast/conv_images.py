"""conv2d's "images" CPU path, for large output maps (28x28 and more): the im2col matrix of one
image (or a few) at a time, built into a cache-sized scratch buffer straight from NCHW and
multiplied at once; an image's own Ho*Wo columns make a wide enough GEMM when the map is large.
At stride 1 the columns are built at a row pitch of W + pw instead (WideColumns): one long copy
per image rather than a short one per row, for a few junk columns that are computed and dropped.
"""
import numpy as np

from ..conv import Conv2d
from . import conv_tiled
from .choices import dw_gemm, dw_transposed, dx_as_convolution, flipped_weights
from .conv_tiled import col2im_rows, im2col_rows
from .phases import merge_stride_phases, phases_shape, stride_phases
from .workspace import scratch


class ImagesConv2d(Conv2d):
    """Conv2d one image's im2col matrix (or a few) at a time; at stride 1 at the wide row pitch
    (WideColumns) where that adds at most ``wide_max_junk`` junk columns per output column."""
    wide_max_junk = 1 / 8

    def forward(self, x, w, b=None):
        win = self.setup(x, w, b)
        K = w.shape[0]
        y = self.convolve(x, self.w2, win, np.empty((x.shape[0], K, win.Ho, win.Wo), x.dtype))
        if b is not None:
            y += b.reshape(1, K, 1, 1)
        return y

    def backward(self, gy):
        dw = self.weight_grad(gy) if self.needs_input_grad[1] else None
        dx = self.input_grad(gy) if self.needs_input_grad[0] else None
        return self.gradients(gy, dx, dw)

    def wide(self, win):
        """Stride 1, and a map wide enough that the row pitch adds few junk columns."""
        junk = wide_pitch(win.W, win.pw, win.Wo) - win.Wo
        return win.stride == (1, 1) and junk <= self.wide_max_junk * win.Wo

    def convolve(self, x, w2, win, out):
        """out (N, K, Ho, Wo) = w2 (K, C*R*S) @ each image's im2col matrix, a group at a time."""
        N, K, Ho, Wo = out.shape
        if self.wide(win):
            columns = WideColumns(x.shape[1], win, x.dtype)
            y_wide = scratch("conv.y", (K, Ho, columns.Wp), x.dtype)
            for n in range(N):
                np.matmul(w2, columns.of(x[n]), out=y_wide.reshape(K, -1))
                out[n] = y_wide[:, :, :Wo]
            return out
        for a, b in image_groups(N, w2.shape[1], Ho * Wo, x.itemsize):
            col = images_im2col(x, a, b, win)
            np.matmul(w2, col, out=out[a:b].reshape(b - a, K, Ho * Wo))
        return out

    def weight_grad(self, gy):
        """dW = Σ over images of gy @ colᵀ, in the orientation dw_transposed picks."""
        x, win = self.x, self.window
        N, C = x.shape[:2]
        K, q = self.w2.shape
        Ho, Wo = win.out_hw
        transposed = dw_transposed("images", Ho * Wo)
        acc = np.zeros((q, K) if transposed else (K, q), dtype=x.dtype)
        if self.wide(win):  # at the wide row pitch, image by image
            columns = WideColumns(C, win, x.dtype)
            g_wide = scratch("conv.gy", (K, Ho, columns.Wp), x.dtype)
            g_wide[:, :, Wo:] = 0  # the junk columns must not reach dW
            part = scratch("conv.dw_part", acc.shape, x.dtype)
            for n in range(N):
                g_wide[:, :, :Wo] = gy[n]
                acc += dw_gemm(columns.of(x[n]), g_wide.reshape(K, -1), transposed, part)
        else:
            g3 = np.ascontiguousarray(gy).reshape(N, K, Ho * Wo)
            for a, b in image_groups(N, q, Ho * Wo, x.itemsize):
                parts = scratch("conv.dw_part", (b - a,) + acc.shape, x.dtype)
                col = images_im2col(x, a, b, win)
                acc += dw_gemm(col, g3[a:b], transposed, parts).sum(axis=0)
        return acc.T.copy() if transposed else acc

    def input_grad(self, gy):
        """dx: a convolution of gy where dx_as_convolution says so, else col2im image by image."""
        x, w, win = self.x, self.w, self.window
        N, C, H, W = x.shape
        K, q = self.w2.shape
        Ho, Wo = win.out_hw
        dx = np.empty(x.shape, dtype=x.dtype)
        dx_window = dx_as_convolution("images", win, w.size, gy.size)
        if dx_window is not None:
            return self.convolve(gy, flipped_weights(w), dx_window, dx)
        g3 = np.ascontiguousarray(gy).reshape(N, K, Ho * Wo)
        geometry = (win.kernel, win.stride, win.dilation)
        dphases = scratch("conv.dx", phases_shape((C, H, W, 1), win.padding, win.stride), x.dtype)
        for a, b in image_groups(N, q, Ho * Wo, x.itemsize):
            dcol = scratch("conv.col", (b - a, C, win.kh, win.kw, Ho, Wo, 1), x.dtype)
            np.matmul(self.w2.T, g3[a:b], out=dcol.reshape(b - a, q, Ho * Wo))
            for i in range(b - a):
                dphases.fill(0)
                col2im_rows(dphases, dcol[i], geometry, 0, Ho)
                merge_stride_phases(dphases, (1, C, H, W), win.padding, win.stride,
                                    out=dx[a + i:a + i + 1])
        return dx


class WideImagesConv2d(ImagesConv2d):
    """The images path at the wide row pitch for every stride-1 convolution, however many junk
    columns that adds (the tests' way to run WideColumns on small maps)."""
    wide_max_junk = float("inf")


def image_groups(N, q, pixels, itemsize):
    """Split the batch into groups of images whose im2col (q x pixels each) fills about
    conv_tiled.TILE_BYTES."""
    per = max(1, conv_tiled.TILE_BYTES // max(1, q * pixels * itemsize))
    n = -(-N // per)
    per = -(-N // n)  # even groups
    return [(a, min(N, a + per)) for a in range(0, N, per)]


def images_im2col(x, a, b, win):
    """The im2col matrices of images a..b of x (N, C, H, W): a scratch (b - a, C*R*S, Ho*Wo).
    Each image is padded (and split into stride phases) on its own -- the batch-last machinery
    with a batch of one, whose layout (C, H, W, 1) is the image's own."""
    C, geometry = x.shape[1], (win.kernel, win.stride, win.dilation)
    col = scratch("conv.col", (b - a, C, win.kh, win.kw, win.Ho, win.Wo, 1), x.dtype)
    for i in range(b - a):
        phases = stride_phases("conv.x", x[a + i][..., None], win.padding, geometry)
        im2col_rows(col[i], phases, geometry, 0, win.Ho)
    return col.reshape(b - a, C * win.kh * win.kw, win.Ho * win.Wo)


def wide_pitch(W, pw, out_w):
    """Row pitch of WideColumns' flat image: W + pw (one shared run of padding between rows),
    or the output width where padding wider than the kernel's reach makes that wider."""
    return max(W + pw, out_w)


class WideColumns:
    """Stride-1 im2col computed at a row pitch Wp a little wider than the output, one image at a
    time.

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

    def __init__(self, C, win, dtype):
        Hp = win.H + 2 * win.ph
        Wp = wide_pitch(win.W, win.pw, win.Wo)
        self.Ho, self.Wp, self.pad = win.Ho, Wp, win.padding
        plane, slack = C * Hp * Wp, (win.kw - 1) * win.dw
        flat = scratch("conv.flat", (plane + slack,), dtype)
        flat.fill(0)  # padding and slack; images only ever overwrite the pixels
        self.image = flat[:plane].reshape(C, Hp, Wp)
        step = flat.itemsize
        self.taps = np.lib.stride_tricks.as_strided(
            flat, (C, win.kh, win.kw, self.Ho * Wp),
            (Hp * Wp * step, win.dh * Wp * step, win.dw * step, step), writeable=False)
        self.col = scratch("conv.col", (C * win.kh * win.kw, self.Ho * Wp), dtype)

    def of(self, image):
        """The (C*R*S, Ho*Wp) im2col matrix of one (C, H, W) image (a scratch buffer)."""
        ph, pw = self.pad
        self.image[:, ph:ph + image.shape[1], pw:pw + image.shape[2]] = image
        np.copyto(self.col.reshape(self.taps.shape), self.taps)
        return self.col
