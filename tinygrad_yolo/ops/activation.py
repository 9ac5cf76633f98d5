"""Activations. Each saves the one array its backward needs (usually its output)."""
from ..backend import array_module
from ..function import Function
from .reduce import normalize_axis


class ReLU(Function):
    def forward(self, x):
        self.out = array_module(x).maximum(x, 0)
        return self.out

    def backward(self, g):
        return g * (self.out > 0)  # the gradient at exactly 0 is taken as 0


class LeakyReLU(Function):
    def __init__(self, slope=0.01):
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return array_module(x).where(self.positive, x, x * self.slope)

    def backward(self, g):
        return array_module(g).where(self.positive, g, g * self.slope)


class Sigmoid(Function):
    def forward(self, x):
        xp = array_module(x)
        self.out = 0.5 * (xp.tanh(0.5 * x) + 1)  # = 1 / (1 + e^-x) without overflow
        return self.out

    def backward(self, g):
        return g * self.out * (1 - self.out)


class Tanh(Function):
    def forward(self, x):
        self.out = array_module(x).tanh(x)
        return self.out

    def backward(self, g):
        return g * (1 - self.out * self.out)


class Softmax(Function):
    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = array_module(x)
        if x.size == 0:  # nothing to normalise (and max() has no identity)
            normalize_axis(self.axis, x.ndim)
            self.out = xp.empty_like(x)
            return self.out
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.out = e / e.sum(axis=self.axis, keepdims=True)
        return self.out

    def backward(self, g):
        # Jacobian-vector product of softmax: s * (g - <g, s>)
        s = self.out
        return s * (g - (g * s).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = array_module(x)
        if x.size == 0:
            normalize_axis(self.axis, x.ndim)
            self.out = xp.empty_like(x)
            return self.out
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.out

    def backward(self, g):
        xp = array_module(g)
        return g - xp.exp(self.out) * g.sum(axis=self.axis, keepdims=True)
