"""Window geometry shared by convolution, im2col and pooling: argument checks, output sizes,
and which outputs of a window read inside the image.
"""
import numpy as np


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


def check_conv_args(x_shape, w_shape, b_shape, stride, padding, dilation):
    """Validate shapes and hyper-parameters; raise a ValueError that names them."""
    if len(x_shape) != 4:
        raise ValueError(f"conv2d: input must be 4-d (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-d (out_channels, in_channels, kH, kW), "
                         f"got shape {tuple(w_shape)}")
    N, C, H, W = x_shape
    K, Cw, R, S = w_shape
    if C != Cw:
        raise ValueError(f"conv2d: input has {C} channels (shape {tuple(x_shape)}) but the weight "
                         f"{tuple(w_shape)} expects {Cw}")
    if b_shape is not None and tuple(b_shape) != (K,):
        raise ValueError(f"conv2d: bias must have shape ({K},) for weight {tuple(w_shape)}, "
                         f"got {tuple(b_shape)}")
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    if min(sh, sw) < 1 or min(dh, dw) < 1 or min(ph, pw) < 0 or min(R, S) < 1:
        raise ValueError(f"conv2d: need stride >= 1, dilation >= 1, padding >= 0 and a non-empty "
                         f"kernel, got stride {(sh, sw)}, dilation {(dh, dw)}, padding {(ph, pw)}, "
                         f"weight {tuple(w_shape)}")
    eh, ew = dh * (R - 1) + 1, dw * (S - 1) + 1  # the kernel's extent once dilated
    if eh > H + 2 * ph or ew > W + 2 * pw:
        raise ValueError(f"conv2d: kernel {R}x{S} (dilation {(dh, dw)}: extent {eh}x{ew}) is larger "
                         f"than the padded input {H + 2 * ph}x{W + 2 * pw} (input shape "
                         f"{tuple(x_shape)}, padding {(ph, pw)})")
    Ho, Wo = conv_output_size(H, R, sh, ph, dh), conv_output_size(W, S, sw, pw, dw)
    return (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)


def pool_geometry(op, x_shape, kernel_size, stride, padding):
    """Validate; return (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-d (N, C, H, W), got shape {tuple(x_shape)}")
    (kh, kw) = int_pair(kernel_size, "kernel_size", op)
    (sh, sw) = (kh, kw) if stride is None else int_pair(stride, "stride", op)
    (ph, pw) = int_pair(padding, "padding", op, minimum=0)
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{op}: kernel size and stride must be >= 1 and padding >= 0, got kernel "
                         f"{(kh, kw)}, stride {(sh, sw)}, padding {(ph, pw)}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{op}: padding {(ph, pw)} must be at most half the kernel size {(kh, kw)}")
    H, W = x_shape[2:]
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(f"{op}: kernel {kh}x{kw} is larger than the padded input "
                         f"{H + 2 * ph}x{W + 2 * pw} (input shape {tuple(x_shape)}, padding {(ph, pw)})")
    Ho, Wo = conv_output_size(H, kh, sh, ph, 1), conv_output_size(W, kw, sw, pw, 1)
    return (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)


def _valid_range(size, out_size, offset, stride):
    """Outputs o in [o0, o1) read input o*stride + offset inside [0, size); also return the first read.

    o*stride + offset >= 0      <=>  o >= ceil(-offset / stride) = -(offset // stride)
    o*stride + offset <= size-1 <=>  o <= (size - 1 - offset) // stride
    (Python's // floors negative numbers too, which is what both bounds need.)
    """
    o0 = max(0, -(offset // stride))
    o1 = max(o0, min(out_size, (size - 1 - offset) // stride + 1))
    return o0, o1, o0 * stride + offset


def phase_range(size, n, offset, stride):
    """Phase entries i in [i0, i1) hold image rows i*stride + offset inside [0, size): returns
    (i0, i1) and the slice of those image rows. (Python's // floors negative numbers, as the
    bounds need.)"""
    i0 = min(n, max(0, -(offset // stride)))
    i1 = max(i0, min(n, (size - 1 - offset) // stride + 1))
    if i1 == i0:
        return (i0, i1), slice(0, 0)
    return (i0, i1), slice(i0 * stride + offset, (i1 - 1) * stride + offset + 1, stride)


def kernel_taps(kernel, stride, dilation):
    """(r, s, py, px, qy, qx) for every kernel tap: its phase and its offset inside it."""
    (R, S), (sh, sw), (dh, dw) = kernel, stride, dilation
    return [(r, s) + (r * dh % sh, s * dw % sw, r * dh // sh, s * dw // sw)
            for r in range(R) for s in range(S)]
