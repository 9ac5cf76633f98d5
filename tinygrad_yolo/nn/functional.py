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
