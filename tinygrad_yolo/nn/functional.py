"""The user-facing op names (PyTorch's torch.nn.functional, NCHW layout)."""
import numpy as np

from ..ops import activation as A
from ..ops import loss as L
from ..tensor import Tensor, as_tensor


def relu(x):
    return A.ReLU.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return A.LeakyReLU.apply(x, slope=negative_slope)


def sigmoid(x):
    return A.Sigmoid.apply(x)


def tanh(x):
    return A.Tanh.apply(x)


def softmax(x, axis=-1):
    return A.Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    return A.LogSoftmax.apply(x, axis=axis)


def linear(x, w, b=None):
    """x @ w.T + b with w of shape (out_features, in_features)."""
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input (..., {x.shape[-1]}) does not fit weight {w.shape} "
                         "(expected (out_features, in_features))")
    y = x @ w.T
    return y + b if b is not None else y


def mse_loss(x, y, reduction="mean"):
    y = as_tensor(y, x)
    if x.shape != y.shape:
        raise ValueError(f"mse_loss: input shape {x.shape} and target shape {y.shape} differ")
    d = x - y
    sq = d * d
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    if reduction == "none":
        return sq
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy with integer class targets (N,), logits (N, C)."""
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    return L.CrossEntropy.apply(logits, target=t, reduction=reduction)


def pad(x, pad_width, value=0.0):
    """Constant padding with NumPy-style widths (int, or (before, after) per axis)."""
    return x.pad(pad_width, value)


# ---- convolution, pooling, batch normalisation: dispatch.py picks the implementation ----------
from .. import dispatch  # noqa: E402  (this section's imports, kept beside it)
from ..backend import array_module  # noqa: E402
from ..ops import pool as _pool  # noqa: E402


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-D convolution, NCHW: x (N, C, H, W), w (K, C, R, S), b (K,) -> (N, K, Ho, Wo).
    stride, padding and dilation are ints or (h, w) pairs."""
    x, w = as_tensor(x), as_tensor(w)
    inputs = (x, w) if b is None else (x, w, b)
    path = dispatch.conv2d_path(x.data, w.data, stride, padding, dilation)
    op = dispatch.resolve(dispatch.CONV2D, path)
    return op.apply(*inputs, stride=stride, padding=padding, dilation=dilation)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kernel_size windows (stride defaults to kernel_size); padding counts as -inf;
    on ties the gradient goes to the first maximum in the window."""
    x = as_tensor(x)
    path = dispatch.max_pool2d_path(x.data, kernel_size, stride, padding)
    op = dispatch.resolve(dispatch.MAX_POOL2D, path)
    return op.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over kernel_size windows; padding counts as zeros (count_include_pad=True)."""
    x = as_tensor(x)
    path = dispatch.avg_pool2d_path(x.data, kernel_size, stride, padding)
    op = dispatch.resolve(dispatch.AVG_POOL2D, path)
    return op.apply(x, kernel_size=kernel_size, stride=stride, padding=padding)


def adaptive_avg_pool2d(x, output_size):
    """Average into an output_size grid of bins (int or (h, w); 1 = global average pool)."""
    return _pool.AdaptiveAvgPool2d.apply(x, output_size=output_size)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5, *, residual=None, relu=False):
    """Batch normalisation over (N, C) or (N, C, H, W) inputs, PyTorch semantics: training mode
    normalises with the batch statistics and updates running_mean / running_var (arrays or
    Tensors, or None to skip) in place with the unbiased variance; eval mode uses them.
    ``residual`` (a tensor of x's shape, added after) and ``relu`` give relu(bn(x) + residual):
    one fused op on CUDA (cuda/norm.py), the composed ops on the CPU."""
    x = as_tensor(x)
    C = x.shape[1] if x.ndim >= 2 else 0  # BatchNorm rejects other ranks by name
    xp = array_module(x.data)
    if weight is None:
        weight = Tensor._from_op(xp.ones(C, dtype=x.dtype), None, False)
    if bias is None:
        bias = Tensor._from_op(xp.zeros(C, dtype=x.dtype), None, False)
    weight, bias = as_tensor(weight), as_tensor(bias)
    stats = [s.data if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    path = dispatch.batch_norm_path(x.data, weight.data, bias.data, *stats, training)
    op = dispatch.resolve(dispatch.BATCH_NORM, path)
    kw = dict(running_mean=stats[0], running_var=stats[1], training=training, momentum=momentum,
              eps=eps)
    if path == "cuda":  # FusedBatchNorm: the residual add and the ReLU in the same kernels
        inputs = (x, weight, bias) if residual is None else (x, weight, bias, as_tensor(residual))
        return op.apply(*inputs, relu=relu, **kw)
    y = op.apply(x, weight, bias, **kw)
    if residual is not None:
        y = y + residual
    return A.ReLU.apply(y) if relu else y
