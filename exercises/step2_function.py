"""Step 2 - Function and backward() on arrays: the engine of tinygrad_yolo in miniature.

A Function subclass computes ``forward`` on raw NumPy arrays and ``backward`` on the gradient
of its output, returning one gradient per input (a few are given below: Add, Mul, Neg, Exp,
Sum). Write the two pieces that make them an autograd engine:

* ``Function.apply(*inputs)``: make an instance, set ``needs_input_grad`` (one bool per input),
  run ``forward`` on the inputs' ``.data``, wrap the result in a Tensor and, only if some
  input requires a gradient, record the edge: the result requires a gradient, its ``_ctx``
  is the Function, and the Function's ``parents`` are the input Tensors.
* ``Tensor.backward()``: order the graph topologically (iteratively: no recursion limit),
  keep a dict from id(tensor) to the gradient accumulated so far (``np.ones_like`` for the
  output), and walk from the output back: a tensor made by an op hands its gradient to
  ``_ctx.backward`` and adds what comes back onto its parents' entries; a leaf that
  requires a gradient adds it to ``.grad`` (so gradients add up over backward calls until
  zeroed, as in PyTorch).

All inputs of an op have the same shape here; broadcasting is step 3.

What the checks rely on (the contract of the given ops):
* a one-input op's ``backward`` (Neg, Exp, Sum) returns a bare array, a two-input op's (Add,
  Mul) a tuple of two: make it a tuple yourself before pairing it with ``parents``, or
  ``zip`` walks the rows of the array and the gradients come out wrong;
* an op may hand back the very array it received (Add returns ``g, g``, Sum a read-only
  broadcast view): never add into such an array in place (``+=``), add into a fresh one;
* ``.grad`` is a NumPy array of the tensor's shape, ``None`` for a tensor that requires none;
  ``_ctx.parents`` lists every input Tensor, in order, also those that need no gradient.

Check it: pytest exercises -m step2          (the reference: exercises/solutions/step2_function.py)
Read alongside: docs/walkthrough.md, sections 2 and 3; tinygrad_yolo/function.py, tensor.py.
"""
import numpy as np

from exercises import ExerciseNotDone


class Tensor:
    def __init__(self, data, requires_grad=False):
        self.data = np.asarray(data, dtype=np.float64)
        self.requires_grad = requires_grad
        self.grad = None   # a NumPy array after backward()
        self._ctx = None   # the Function that made this tensor (None for a leaf)

    def backward(self):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires a gradient
        (``self`` must have one element)."""
        raise ExerciseNotDone("step 2: write Tensor.backward (topological order, then one walk "
                              "back with a dict of gradients)")

    # a few operators, so that expressions read naturally
    def __add__(self, other): return Add.apply(self, _tensor(other))
    def __radd__(self, other): return Add.apply(_tensor(other), self)
    def __mul__(self, other): return Mul.apply(self, _tensor(other))
    def __rmul__(self, other): return Mul.apply(_tensor(other), self)
    def __neg__(self): return Neg.apply(self)
    def __sub__(self, other): return Add.apply(self, Neg.apply(_tensor(other)))
    def exp(self): return Exp.apply(self)
    def sum(self): return Sum.apply(self)


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


class Function:
    def forward(self, *arrays):
        raise TypeError(f"{type(self).__name__} has no forward")

    def backward(self, g):
        raise TypeError(f"{type(self).__name__} has no backward")

    @classmethod
    def apply(cls, *inputs):
        """Run the op on Tensors; record the graph edge when an input needs a gradient."""
        raise ExerciseNotDone("step 2: write Function.apply (forward on the arrays, wrap, record "
                              "_ctx and parents when an input requires a gradient)")


# ---- given: a few ops, each saving in forward what its backward needs ------------------------
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, g):
        return g * self.out


class Sum(Function):
    def forward(self, x):
        self.shape = x.shape
        return x.sum()

    def backward(self, g):
        return np.broadcast_to(g, self.shape)
