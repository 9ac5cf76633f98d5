"""Reductions: the gradient of a sum is the upstream gradient broadcast back."""
from ..backend import array_module
from ..function import Function


def normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


def _expand(g, in_shape, axes, keepdims):
    """Undo a reduction's shape change: reinsert the reduced axes, then broadcast."""
    xp = array_module(g)
    if not keepdims:
        shape = list(g.shape)
        for a in axes:
            shape.insert(a, 1)
        g = g.reshape(shape)
    return xp.broadcast_to(g, in_shape)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = normalize_axis(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        return _expand(g, self.in_shape, self.axes, self.keepdims)


class Mean(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.in_shape = x.shape
        self.axes = normalize_axis(self.axis, x.ndim)
        count = 1
        for a in self.axes:
            count *= x.shape[a]
        self.count = count
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        return _expand(g, self.in_shape, self.axes, self.keepdims) / self.count  # a new array


class Max(Function):
    """Max over axes; tied maxima share the gradient evenly."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"max of an empty tensor (shape {x.shape})")
        self.x = x
        self.axes = normalize_axis(self.axis, x.ndim)
        self.out = x.max(axis=self.axes, keepdims=True)
        return self.out if self.keepdims else self.out.reshape(
            [s for i, s in enumerate(x.shape) if i not in self.axes])

    def backward(self, g):
        mask = self.x == self.out
        count = mask.sum(axis=self.axes, keepdims=True)
        return _expand(g, self.x.shape, self.axes, self.keepdims) * mask / count
