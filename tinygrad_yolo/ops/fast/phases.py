"""Stride phases: a padded, batch-last copy of an input split so that every kernel tap reads a
unit-stride block (the CPU's fast conv paths and max-pool), and its adjoint.
"""
import numpy as np

from ..geometry import kernel_taps, valid_range
from .workspace import scratch


def phases_shape(src_shape, padding, stride):
    """The (C, sh, sw, Hq, Wq, N) shape of stride_phases' output for a (C, H, W, N) source."""
    C, H, W, N = src_shape
    (ph, pw), (sh, sw) = padding, stride
    return (C, sh, sw, -(-(H + 2 * ph) // sh), -(-(W + 2 * pw) // sw), N)


def stride_phases(name, src, padding, geometry, fresh=False, fill=0):
    """Padded batch-last copy of ``src`` (C, H, W, N) — any strides — split into its stride
    phases: (C, sh, sw, Hq, Wq, N) with

        out[c, py, px, i, j, n] = xpad[c, i*sh + py, j*sw + px, n]

    where xpad is src with ph / pw values ``fill`` (zeros for a conv) around each image. Kernel
    tap (r, s) of output pixel (oy, ox) reads xpad[oy*sh + r*dh, ox*sw + s*dw], which is phase
    ((r*dh) % sh, (s*dw) % sw) at (oy + (r*dh) // sh, ox + (s*dw) // sw): for every tap a block
    with unit strides, whose rows are runs of Wo*N contiguous values. (Stride 1 has one phase:
    plain xpad.) Only the phases some tap reads are filled (a 1x1 stride-2 kernel reads one of
    four).
    ``geometry`` is (kernel, stride, dilation). A scratch buffer unless ``fresh``. An NCHW
    array x is split image by image as x[n][..., None], or all maps at once (conv's "images"
    path, max-pool) as x.reshape(N*C, H, W)[..., None]: batch-last with a batch of one."""
    C, H, W, N = src.shape
    (ph, pw), (sh, sw) = padding, geometry[1]
    shape = phases_shape(src.shape, padding, (sh, sw))
    out = np.empty(shape, dtype=src.dtype) if fresh else scratch(name, shape, src.dtype)
    for py, px in sorted({(t[2], t[3]) for t in kernel_taps(*geometry)}):
        (i0, i1), rows = valid_range(H, shape[3], py - ph, sh)
        (j0, j1), cols = valid_range(W, shape[4], px - pw, sw)
        phase = out[:, py, px]
        phase[:, :i0] = fill  # padding rows and columns
        phase[:, i1:] = fill
        phase[:, i0:i1, :j0] = fill
        phase[:, i0:i1, j1:] = fill
        phase[:, i0:i1, j0:j1] = src[:, rows, cols]
    return out


def merge_stride_phases(phases, x_shape, padding, stride, out=None):
    """The adjoint of stride_phases for NCHW ``x_shape``: the image part as (N, C, H, W), in ``out``
    or a fresh array."""
    N, C, H, W = x_shape
    (ph, pw), (sh, sw) = padding, stride
    out = np.empty(x_shape, dtype=phases.dtype) if out is None else out
    for py in range(sh):
        (i0, i1), rows = valid_range(H, phases.shape[3], py - ph, sh)
        for px in range(sw):
            (j0, j1), cols = valid_range(W, phases.shape[4], px - pw, sw)
            out[:, :, rows, cols] = phases[:, py, px, i0:i1, j0:j1].transpose(3, 0, 1, 2)
    return out
