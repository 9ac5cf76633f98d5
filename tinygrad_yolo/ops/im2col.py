"""im2col / col2im on NumPy or CuPy arrays: the reference for the CUDA kernels in kernels/.

A convolution reads, for output pixel (oy, ox) and kernel tap (i, j), the input pixel

    y = oy*sh - ph + i*dh,    x = ox*sw - pw + j*dw          (zero where it falls in the padding)

(ops/geometry.py checks the arguments and builds the call's ``Window`` win of plain ints).
im2col copies those reads into ``col`` of shape (N, C, kh, kw, Ho, Wo) (the Caffe/Chainer
layout), so a convolution becomes one matrix product; col2im is its adjoint and sums every
column entry back onto the input pixel it was read from.

Both loop over the kh*kw taps only: for a fixed tap the reads form a strided slice of x, so
each tap is one vectorised copy. Instead of padding x (a fresh buffer the size of x on every
call, and first touch of new memory is slow on these machines) each tap copies only the
output range that reads real pixels (geometry.valid_range) and zeroes the rest.
"""
from ..backend import array_module
from .geometry import valid_range, window


def _check_4d(name, a):
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(a.shape)}")


def im2col(x, kh, kw, stride=1, padding=0, dilation=1, out=None):
    """x (N, C, H, W) -> col (N, C, kh, kw, Ho, Wo); ``out`` lets callers reuse a buffer."""
    _check_4d("im2col input", x)
    return im2col_window(x, window("im2col", x.shape, (kh, kw), stride, padding, dilation), out)


def col2im(col, x_shape, kh, kw, stride=1, padding=0, dilation=1, out=None):
    """The adjoint of im2col: col (N, C, kh, kw, Ho, Wo) -> x (N, C, H, W), overlaps summed."""
    if len(x_shape) != 4:
        raise ValueError(f"col2im x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    return col2im_window(col, x_shape,
                         window("col2im", x_shape, (kh, kw), stride, padding, dilation), out)


def im2col_window(x, win, out=None):
    """im2col of x for the checked Window ``win`` (what Conv2d calls)."""
    xp = array_module(x)
    shape = tuple(x.shape[:2]) + (win.kh, win.kw, win.Ho, win.Wo)
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    elif tuple(out.shape) != shape or out.dtype != x.dtype:
        raise ValueError(f"im2col out= must have shape {shape} and dtype {x.dtype}, "
                         f"got {tuple(out.shape)} {out.dtype}")
    for i in range(win.kh):  # tap (i, j) reads rows i*dh - ph + oy*sh, columns j*dw - pw + ox*sw
        (oy0, oy1), rows = valid_range(win.H, win.Ho, i * win.dh - win.ph, win.sh)
        for j in range(win.kw):
            (ox0, ox1), cols = valid_range(win.W, win.Wo, j * win.dw - win.pw, win.sw)
            tap = out[:, :, i, j]  # (N, C, Ho, Wo) view
            # Outputs whose read falls in the padding get 0 (out may hold old data).
            tap[:, :, :oy0] = 0
            tap[:, :, oy1:] = 0
            tap[:, :, oy0:oy1, :ox0] = 0
            tap[:, :, oy0:oy1, ox1:] = 0
            tap[:, :, oy0:oy1, ox0:ox1] = x[:, :, rows, cols]
    return out


def col2im_window(col, x_shape, win, out=None):
    """col2im into an x of ``x_shape`` for the checked Window ``win``."""
    xp = array_module(col)
    shape = tuple(x_shape[:2]) + (win.kh, win.kw, win.Ho, win.Wo)
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
    for i in range(win.kh):
        (oy0, oy1), rows = valid_range(win.H, win.Ho, i * win.dh - win.ph, win.sh)
        for j in range(win.kw):
            (ox0, ox1), cols = valid_range(win.W, win.Wo, j * win.dw - win.pw, win.sw)
            # Within one tap every output reads a different pixel, so this strided += has
            # no repeated indices (no np.add.at needed); reads of padding are simply dropped.
            out[:, :, rows, cols] += col[:, :, i, j, oy0:oy1, ox0:ox1]
    return out
