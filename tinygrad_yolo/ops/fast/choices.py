"""dx as a convolution: at stride 1 the input gradient is a convolution of gy with the flipped kernel."""
from ...backend import array_module


def _dx_conv_padding(kernel, stride, padding, dilation):
    """At stride 1 the input gradient is itself a convolution:

        dx[c, i] = sum over k, r of w[k, c, r] * gy[k, i + (R-1-r)*d - q],   q = d(R-1) - p

    a stride-1 convolution of gy, padded by q, with the kernel flipped and its K and C axes
    swapped (_flipped_weights), instead of a col2im. Returns its padding (qh, qw), or None
    where it doesn't apply (a stride, or a padding beyond the kernel's reach)."""
    (R, S), (ph, pw), (dh, dw) = kernel, padding, dilation
    qh, qw = dh * (R - 1) - ph, dw * (S - 1) - pw
    return (qh, qw) if stride == (1, 1) and qh >= 0 and qw >= 0 else None


def _flipped_weights(w):
    """(K, C, R, S) -> the (C, K*R*S) weight matrix of _dx_conv_padding's convolution."""
    K, C, R, S = w.shape
    return array_module(w).ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)).reshape(C, K * R * S)
