"""The free constructors and combinators: ``tg.zeros``, ``tg.randn``, ``tg.arange``, ``tg.stack``,
``tg.cat``, ``tg.where``, ... (PyTorch's names)."""
import numpy as np

from .backend import array_module, xp_for
from .ops import elementwise as E
from .ops import shape as shape_ops
from .tensor import Tensor


def tensor(data, requires_grad=False, device=None, dtype=None):
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def _filled(fill):
    def make(*shape, dtype=np.float32, device="cpu", requires_grad=False):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor(fill(xp_for(device), tuple(shape), dtype), requires_grad=requires_grad)
    return make


zeros = _filled(lambda xp, shape, dtype: xp.zeros(shape, dtype=dtype))
ones = _filled(lambda xp, shape, dtype: xp.ones(shape, dtype=dtype))
randn = _filled(lambda xp, shape, dtype: xp.random.standard_normal(shape).astype(dtype))
rand = _filled(lambda xp, shape, dtype: xp.random.random_sample(shape).astype(dtype))


def zeros_like(t, requires_grad=False):
    return Tensor(array_module(t.data).zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t, requires_grad=False):
    return Tensor(array_module(t.data).ones_like(t.data), requires_grad=requires_grad)


def arange(*args, dtype=np.float32, device="cpu"):
    return Tensor(xp_for(device).arange(*args, dtype=dtype))


def concatenate(tensors, axis=0):
    return shape_ops.Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=0):
    return shape_ops.Stack.apply(*tensors, axis=axis)


def where(condition, a, b):
    cond = condition.data if isinstance(condition, Tensor) else condition
    return E.Where.apply(a, b, condition=cond)


def maximum(a, b):
    return E.Maximum.apply(a, b)


def minimum(a, b):
    return E.Minimum.apply(a, b)
