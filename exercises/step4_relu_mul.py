"""Step 4 - two ops of the real engine: ReLU and Mul, as tinygrad_yolo Functions.

From here on you write ops for tinygrad_yolo itself (tinygrad_yolo/function.py): ``forward``
gets raw arrays and saves on ``self`` what ``backward`` will need; ``backward`` gets the
gradient ``g`` of the output and returns one gradient per input - or None where
``self.needs_input_grad`` says that input needs none (the image in ``w * x``: no work
wasted). Broadcasting is the engine's business (step 3): return the gradient in the
broadcast shape. Use ``array_module(x)`` instead of ``np`` where you need a library function,
so the op runs on CuPy arrays too.

The checks swap your classes into the engine (``a * b`` and ``x.relu()`` then call them) and
run the project's gradient-check cases "mul" and "relu".

What the checks rely on: ``forward`` returns one array; ``Mul.backward`` returns a tuple of
two (an entry None where ``self.needs_input_grad`` is False), ``ReLU.backward`` a bare array
(one input); neither writes into ``g`` (other ops may still hold it).

Check it: pytest exercises -m step4          (the reference: exercises/solutions/step4_relu_mul.py)
Read alongside: docs/walkthrough.md, section 4; tinygrad_yolo/ops/elementwise.py.
"""
from tinygrad_yolo.backend import array_module  # noqa: F401  (for maximum)
from tinygrad_yolo.function import Function

from exercises import ExerciseNotDone


class Mul(Function):
    def forward(self, a, b):
        raise ExerciseNotDone("step 4: write Mul.forward (save a and b, return a * b)")

    def backward(self, g):
        raise ExerciseNotDone("step 4: write Mul.backward (g * b for a, g * a for b, None where "
                              "not needed)")


class ReLU(Function):
    def forward(self, x):
        raise ExerciseNotDone("step 4: write ReLU.forward (max(x, 0); save what backward needs)")

    def backward(self, g):
        raise ExerciseNotDone("step 4: write ReLU.backward (g where the input was positive, 0 "
                              "elsewhere)")
