"""Weight initialisation (PyTorch's torch.nn.init), in place on ``tensor.data``.

Every function draws from the package generator (``tg.seed`` makes it
repeatable), writes into the tensor's existing array on its own device and
returns the tensor. Fans follow PyTorch: for a weight of shape
(out, in, *kernel), fan_in = in * prod(kernel) and fan_out = out * prod(kernel).
"""
import math
from contextlib import contextmanager

import numpy as np

from .. import backend
from ..utils import get_rng

_skipping = False


@contextmanager
def skip_init():
    """Build modules without initialising their weights (they keep ``np.empty``'s garbage and
    draw nothing from the generator). For loading a checkpoint, which overwrites every value:
    a model described by an untrusted file then costs no work, and its untouched pages no
    memory, until its shapes have been checked against the file's arrays."""
    global _skipping
    before, _skipping = _skipping, True
    try:
        yield
    finally:
        _skipping = before


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations' variance steady through the nonlinearity."""
    if nonlinearity in ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def _fill(tensor, values):
    """Write host ``values`` into the tensor's array (keeping its dtype and device)."""
    xp = backend.array_module(tensor.data)
    on_device = backend.to_device(np.asarray(values), tensor.device)
    tensor.data[...] = xp.asarray(on_device, dtype=tensor.dtype)
    return tensor


def uniform_(tensor, a=0.0, b=1.0):
    if _skipping:
        return tensor
    return _fill(tensor, get_rng().uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    if _skipping:
        return tensor
    return _fill(tensor, get_rng().normal(mean, std, size=tensor.shape))


def constant_(tensor, val):
    if _skipping:
        return tensor
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al. 2015)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2) with std = gain / sqrt(fan) (He et al. 2015)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
