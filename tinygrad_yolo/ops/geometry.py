"""Window geometry, written once for convolution, im2col, pooling and the CUDA kernels.

A window op (convolution, pooling) slides a kh x kw kernel over an input padded by (ph, pw),
in steps of (sh, sw), its taps (dh, dw) apart. Output pixel (oy, ox) and kernel tap (r, s) read

    input row  oy*sh - ph + r*dh,   input column  ox*sw - pw + s*dw       (0 / -inf in the padding)

and along one axis there are (size + 2p - d(k-1) - 1) // s + 1 outputs (``conv_output_size``).

Every call checks its arguments once and builds one ``Window``: twelve plain ints that im2col,
the pooling passes and the kernel launchers in kernels/ read (kernels/ imports nothing from here).
"""
from typing import NamedTuple

import numpy as np


def int_pair(v, name, op, minimum=1):
    """(h, w) from an int or a pair of ints, each at least ``minimum``: the check for a stride,
    padding (minimum 0), dilation or kernel size a user passed. Anything else -- 1.5, "2", True,
    a triple -- is a one-line error naming ``op`` and the argument, never truncated to an int."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) != 2:
        raise ValueError(f"{op}: {name} must be an int or a (h, w) pair of ints, got {v!r}")
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))
               for i in items):
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


class Window(NamedTuple):
    """The geometry of one window op on one input, as plain ints: input H x W, kernel kh x kw,
    stride, padding, dilation, output Ho x Wo. A tuple, so ``H, W, kh, ... = window`` works."""
    H: int
    W: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    Ho: int
    Wo: int

    kernel = property(lambda win: (win.kh, win.kw))
    stride = property(lambda win: (win.sh, win.sw))
    padding = property(lambda win: (win.ph, win.pw))
    dilation = property(lambda win: (win.dh, win.dw))
    out_hw = property(lambda win: (win.Ho, win.Wo))


def window(op, x_shape, kernel, stride, padding, dilation=1):
    """Check the hyper-parameters of a window op on an (N, C, H, W) input and return its Window;
    every error is one line that names ``op`` and the values."""
    kh, kw = int_pair(kernel, "kernel_size", op)
    sh, sw = int_pair(stride, "stride", op)
    ph, pw = int_pair(padding, "padding", op, minimum=0)
    dh, dw = int_pair(dilation, "dilation", op)
    H, W = (int(v) for v in x_shape[2:])
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the kernel's extent once dilated
    if eh > H + 2 * ph or ew > W + 2 * pw:
        extent = f" (dilation {(dh, dw)}: extent {eh}x{ew})" if (dh, dw) != (1, 1) else ""
        raise ValueError(f"{op}: kernel {kh}x{kw}{extent} is larger than the padded input "
                         f"{H + 2 * ph}x{W + 2 * pw} (input shape {tuple(x_shape)}, "
                         f"padding {(ph, pw)}): "
                         "the input is too small for it")
    Ho, Wo = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    return Window(H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def conv_window(x_shape, w_shape, b_shape, stride, padding, dilation):
    """conv2d's checks (shapes that fit together) and its Window."""
    if len(x_shape) != 4:
        raise ValueError(f"conv2d: input must be 4-d (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-d (out_channels, in_channels, kH, kW), "
                         f"got shape {tuple(w_shape)}")
    C, (K, Cw) = x_shape[1], w_shape[:2]
    if C != Cw:
        raise ValueError(f"conv2d: input has {C} channels (shape {tuple(x_shape)}) but the weight "
                         f"{tuple(w_shape)} expects {Cw}")
    if b_shape is not None and tuple(b_shape) != (K,):
        raise ValueError(f"conv2d: bias must have shape ({K},) for weight {tuple(w_shape)}, "
                         f"got {tuple(b_shape)}")
    return window("conv2d", x_shape, w_shape[2:], stride, padding, dilation)


def pool_window(op, x_shape, kernel_size, stride, padding):
    """A pooling op's checks (PyTorch's: stride defaults to the kernel, padding at most half of it,
    which also keeps every window partly inside the image) and its Window."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-d (N, C, H, W), got shape {tuple(x_shape)}")
    kh, kw = int_pair(kernel_size, "kernel_size", op)
    ph, pw = int_pair(padding, "padding", op, minimum=0)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{op}: padding {(ph, pw)} must be at most half the kernel size "
                         f"{(kh, kw)}")
    return window(op, x_shape, (kh, kw), (kh, kw) if stride is None else stride, (ph, pw))


def valid_range(size, n, offset, stride):
    """Of the positions i in [0, n) that read input i*stride + offset, those inside [0, size):
    returns their range (i0, i1) and the slice of the input they read.

        i*stride + offset >= 0       <=>  i >= ceil(-offset / stride) = -(offset // stride)
        i*stride + offset <= size-1  <=>  i <= (size - 1 - offset) // stride

    (Python's // floors negative numbers too, which is what both bounds need.)"""
    i0 = min(n, max(0, -(offset // stride)))
    i1 = max(i0, min(n, (size - 1 - offset) // stride + 1))
    if i1 == i0:
        return (i0, i1), slice(0, 0)
    return (i0, i1), slice(i0 * stride + offset, (i1 - 1) * stride + offset + 1, stride)


def kernel_taps(kernel, stride, dilation):
    """(r, s, py, px, qy, qx) for every kernel tap: its stride phase and its offset inside it."""
    (R, S), (sh, sw), (dh, dw) = kernel, stride, dilation
    return [(r, s) + (r * dh % sh, s * dw % sw, r * dh // sh, s * dw // sw)
            for r in range(R) for s in range(S)]
