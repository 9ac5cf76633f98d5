"""Ops that copy or move data: the gradient passes straight back (the engine casts it to the
input's dtype; ToDevice moves it back to the input's device)."""
from ..backend import device_of, to_device
from ..function import Function


class Clone(Function):
    """A copy with memory of its own (Tensor.clone); the gradient passes through."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


class Cast(Function):
    """dtype conversion; the engine casts the gradient back to the input's dtype."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, g):
        return g


class ToDevice(Function):
    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = device_of(x)
        return to_device(x, self.device)

    def backward(self, g):
        return to_device(g, self.src)
