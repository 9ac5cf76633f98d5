"""Step 4 - two ops of the real engine: ReLU and Mul, as tinygrad_yolo Functions.

From here on you write ops for tinygrad_yolo itself (tinygrad_yolo/function.py): ``forward``
gets raw arrays and saves what ``backward`` will need; ``backward`` gets the gradient of the
output and returns one gradient per input, or None where ``self.needs_input_grad`` says
that input needs none (the image in ``w * x``: no work wasted). Broadcasting is the
engine's business (step 3): return the gradient in the broadcast shape.
"""
from tinygrad_yolo.backend import array_module
from tinygrad_yolo.function import Function


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = g * self.b if self.needs_input_grad[0] else None
        gb = g * self.a if self.needs_input_grad[1] else None
        return ga, gb


class ReLU(Function):
    def forward(self, x):
        self.out = array_module(x).maximum(x, 0)
        return self.out

    def backward(self, g):
        return g * (self.out > 0)  # passes where the input was positive, stops elsewhere
