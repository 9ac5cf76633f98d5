"""im2col / col2im on NumPy or CuPy arrays: the reference for the CUDA kernels in kernels/.

A convolution reads, for output pixel (oy, ox) and kernel tap (i, j), the input pixel

    y = oy*sh - ph + i*dh,    x = ox*sw - pw + j*dw          (zero where it falls in the padding)

im2col copies those reads into ``col`` of shape (N, C, kh, kw, Ho, Wo) (the Caffe/Chainer
layout), so a convolution becomes one matrix product; col2im is its adjoint and sums every
column entry back onto the input pixel it was read from.

Both loop over the kh*kw taps only: for a fixed tap the reads form a strided slice of x, so
each tap is one vectorised copy. Instead of padding x (a fresh buffer the size of x on every
call, and first touch of new memory is slow on these machines) each tap copies only the
output range that reads real pixels and zeroes the rest.

Also the geometry the CPU's fast paths share (conv's tiles, max-pool): ``stride_phases``
splits a padded input into its stride phases so that every kernel tap reads a unit-stride
block, ``merge_stride_phases`` is its adjoint, ``kernel_taps`` says which phase each tap reads.
"""
import numpy as np

from ..backend import array_module
from .workspace import scratch


def int_pair(v, name, op, minimum=1):
    """(h, w) from an int or a pair of ints, each at least ``minimum``: the check for a stride,
    padding (minimum 0), dilation or kernel size a user passed. Anything else -- 1.5, "2", True,
    a triple -- is a one-line error naming ``op`` and the argument, never truncated to an int."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be an int or a (h, w) pair of ints, got {v!r}")
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in items):
        raise TypeError(f"{op}: {name} must be an int or a (h, w) pair of ints, got {v!r}")
    if min(items) < minimum:
        bound = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op}: {name} must be {bound}, got {v!r}")
    return int(items[0]), int(items[1])


def pair(v):
    """(h, w) from an int or a pair of ints (already checked: see int_pair)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"expected an int or a (h, w) pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv_output_size(size, k, s, p, d):
    """Output length along one axis: the last window must start by size + 2p - d(k-1) - 1."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_geometry(hw, kh, kw, stride, padding, dilation):
    """Validate the hyper-parameters; return (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)."""
    sh, sw = int_pair(stride, "stride", "conv")
    ph, pw = int_pair(padding, "padding", "conv", minimum=0)
    dh, dw = int_pair(dilation, "dilation", "conv")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be >= 1, got ({kh}, {kw})")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be >= 1, got ({sh}, {sw})")
    if dh < 1 or dw < 1:
        raise ValueError(f"dilation must be >= 1, got ({dh}, {dw})")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got ({ph}, {pw})")
    H, W = hw
    Ho, Wo = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    if Ho < 1 or Wo < 1:
        raise ValueError(
            f"input {H}x{W} is too small for kernel {kh}x{kw} with stride ({sh}, {sw}), "
            f"padding ({ph}, {pw}), dilation ({dh}, {dw}): output would be {Ho}x{Wo}")
    return (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)


def phase_range(size, n, offset, stride):
    """Phase entries i in [i0, i1) hold image rows i*stride + offset inside [0, size): returns
    (i0, i1) and the slice of those image rows. (Python's // floors negative numbers, as the
    bounds need.)"""
    i0 = min(n, max(0, -(offset // stride)))
    i1 = max(i0, min(n, (size - 1 - offset) // stride + 1))
    if i1 == i0:
        return (i0, i1), slice(0, 0)
    return (i0, i1), slice(i0 * stride + offset, (i1 - 1) * stride + offset + 1, stride)


def stride_phases(name, src, padding, geometry, fresh=False, fill=0):
    """Padded batch-last copy of ``src`` (C, H, W, N) — any strides — split into its stride
    phases: (C, sh, sw, Hq, Wq, N) with

        out[c, py, px, i, j, n] = xpad[c, i*sh + py, j*sw + px, n]

    where xpad is src with ph / pw values ``fill`` (zeros for a conv) around each image. Kernel tap (r, s) of output pixel
    (oy, ox) reads xpad[oy*sh + r*dh, ox*sw + s*dw], which is phase ((r*dh) % sh, (s*dw) % sw)
    at (oy + (r*dh) // sh, ox + (s*dw) // sw): for every tap a block with unit strides, whose
    rows are runs of Wo*N contiguous values. (Stride 1 has one phase: plain xpad.) Only the
    phases some tap reads are filled (a 1x1 stride-2 kernel reads one of four).
    ``geometry`` is (kernel, stride, dilation). A scratch buffer unless ``fresh``. An NCHW
    array x is split image by image as x[n][..., None], or all maps at once (conv's "images"
    path, max-pool) as x.reshape(N*C, H, W)[..., None]: batch-last with a batch of one."""
    C, H, W, N = src.shape
    (ph, pw), (sh, sw) = padding, geometry[1]
    shape = (C, sh, sw, -(-(H + 2 * ph) // sh), -(-(W + 2 * pw) // sw), N)
    out = np.empty(shape, dtype=src.dtype) if fresh else scratch(name, shape, src.dtype)
    for py, px in sorted({(t[2], t[3]) for t in kernel_taps(*geometry)}):
        (i0, i1), rows = phase_range(H, shape[3], py - ph, sh)
        (j0, j1), cols = phase_range(W, shape[4], px - pw, sw)
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
        (i0, i1), rows = phase_range(H, phases.shape[3], py - ph, sh)
        for px in range(sw):
            (j0, j1), cols = phase_range(W, phases.shape[4], px - pw, sw)
            out[:, :, rows, cols] = phases[:, py, px, i0:i1, j0:j1].transpose(3, 0, 1, 2)
    return out


def kernel_taps(kernel, stride, dilation):
    """(r, s, py, px, qy, qx) for every kernel tap: its phase and its offset inside it."""
    (R, S), (sh, sw), (dh, dw) = kernel, stride, dilation
    return [(r, s) + (r * dh % sh, s * dw % sw, r * dh // sh, s * dw // sw)
            for r in range(R) for s in range(S)]


def _valid_range(size, out_size, offset, stride):
    """Outputs o in [o0, o1) read input o*stride + offset inside [0, size); also return the first read.

    o*stride + offset >= 0      <=>  o >= ceil(-offset / stride) = -(offset // stride)
    o*stride + offset <= size-1 <=>  o <= (size - 1 - offset) // stride
    (Python's // floors negative numbers too, which is what both bounds need.)
    """
    o0 = max(0, -(offset // stride))
    o1 = max(o0, min(out_size, (size - 1 - offset) // stride + 1))
    return o0, o1, o0 * stride + offset


def _check_4d(name, a):
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(a.shape)}")


def im2col(x, kh, kw, stride=1, padding=0, dilation=1, out=None):
    """x (N, C, H, W) -> col (N, C, kh, kw, Ho, Wo); ``out`` lets callers reuse a buffer."""
    _check_4d("im2col input", x)
    xp = array_module(x)
    N, C, H, W = x.shape
    (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) = conv_geometry((H, W), kh, kw, stride, padding, dilation)
    shape = (N, C, kh, kw, Ho, Wo)
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    elif tuple(out.shape) != shape or out.dtype != x.dtype:
        raise ValueError(f"im2col out= must have shape {shape} and dtype {x.dtype}, "
                         f"got {tuple(out.shape)} {out.dtype}")
    for i in range(kh):
        oy0, oy1, y0 = _valid_range(H, Ho, i * dh - ph, sh)
        for j in range(kw):
            ox0, ox1, x0 = _valid_range(W, Wo, j * dw - pw, sw)
            tap = out[:, :, i, j]  # (N, C, Ho, Wo) view
            # Outputs whose read falls in the padding get 0 (out may hold old data).
            tap[:, :, :oy0] = 0
            tap[:, :, oy1:] = 0
            tap[:, :, oy0:oy1, :ox0] = 0
            tap[:, :, oy0:oy1, ox1:] = 0
            if oy1 > oy0 and ox1 > ox0:
                # Rows y0, y0+sh, ... (oy1-oy0 of them); the stop is one past the last read.
                tap[:, :, oy0:oy1, ox0:ox1] = x[:, :, y0:y0 + sh * (oy1 - oy0 - 1) + 1:sh,
                                                x0:x0 + sw * (ox1 - ox0 - 1) + 1:sw]
    return out


def col2im(col, x_shape, kh, kw, stride=1, padding=0, dilation=1, out=None):
    """The adjoint of im2col: col (N, C, kh, kw, Ho, Wo) -> x (N, C, H, W), overlaps summed."""
    if len(x_shape) != 4:
        raise ValueError(f"col2im x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    xp = array_module(col)
    N, C, H, W = x_shape
    (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) = conv_geometry((H, W), kh, kw, stride, padding, dilation)
    shape = (N, C, kh, kw, Ho, Wo)
    if tuple(col.shape) != shape:
        raise ValueError(f"col2im col must have shape {shape} for x_shape {tuple(x_shape)}, "
                         f"got {tuple(col.shape)}")
    if out is None:
        out = xp.zeros(tuple(x_shape), dtype=col.dtype)
    elif tuple(out.shape) != tuple(x_shape) or out.dtype != col.dtype:
        raise ValueError(f"col2im out= must have shape {tuple(x_shape)} and dtype {col.dtype}, "
                         f"got {tuple(out.shape)} {out.dtype}")
    else:
        out.fill(0)
    for i in range(kh):
        oy0, oy1, y0 = _valid_range(H, Ho, i * dh - ph, sh)
        for j in range(kw):
            ox0, ox1, x0 = _valid_range(W, Wo, j * dw - pw, sw)
            if oy1 > oy0 and ox1 > ox0:
                # Within one tap every output reads a different pixel, so this strided += has
                # no repeated indices (no np.add.at needed); reads of padding are simply dropped.
                out[:, :, y0:y0 + sh * (oy1 - oy0 - 1) + 1:sh,
                    x0:x0 + sw * (ox1 - ox0 - 1) + 1:sw] += col[:, :, i, j, oy0:oy1, ox0:ox1]
    return out
