"""Step 1 - scalar autograd: a Value holds one number, its gradient, and how it was made.

Write the five operations and backward() below (micrograd's engine.py is the model: about
a screen of code). Each operation returns a new Value whose ``_parents`` are its inputs and
whose ``_backward`` is a function that, when called, adds the chain-rule contribution of
``out.grad`` to each input's ``.grad``. Use ``+=``: a Value used twice must collect both
contributions. ``backward()`` sets ``self.grad = 1`` and calls every node's ``_backward``
in reverse topological order (each node after all the nodes that use it), built without
recursion so that a chain of 10,000 operations works.

What the checks rely on: ``Value(x).data`` is a float and ``.grad`` a float that starts
at 0.0; +, * and ** accept a plain number on either side (the given __radd__, __rmul__, ...
rely on your __add__ and __mul__ wrapping it); ``backward()`` is called once on the output and
leaves every input's ``.grad`` complete.

Check it: pytest exercises -m step1          (the reference: exercises/solutions/step1_scalar.py)
Read alongside: docs/walkthrough.md, section 3 (backward: a topological order).
"""
import math  # noqa: F401  (for exp)

from exercises import ExerciseNotDone


class Value:
    def __init__(self, data, _parents=()):
        self.data = float(data)
        self.grad = 0.0
        self._parents = _parents
        self._backward = lambda: None

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    # ---- yours: each op computes its output and says how to pass the gradient back ----------
    def __add__(self, other):
        """self + other (other may be a plain number: wrap it in a Value first)."""
        raise ExerciseNotDone("step 1: write Value.__add__ (d(a + b)/da = 1, d(a + b)/db = 1)")

    def __mul__(self, other):
        raise ExerciseNotDone("step 1: write Value.__mul__ (d(a b)/da = b, d(a b)/db = a)")

    def __pow__(self, exponent):
        """self ** exponent for a plain number exponent."""
        raise ExerciseNotDone("step 1: write Value.__pow__ (d x^p / dx = p x^(p - 1))")

    def relu(self):
        raise ExerciseNotDone("step 1: write Value.relu (its derivative is 1 where x > 0, else 0)")

    def exp(self):
        raise ExerciseNotDone("step 1: write Value.exp (d e^x / dx = e^x: reuse the output)")

    def backward(self):
        """d(self)/d(every Value it depends on), into each one's ``.grad``."""
        raise ExerciseNotDone("step 1: write Value.backward (an iterative topological order, then "
                              "self.grad = 1 and every node's _backward() from the output back)")

    # ---- given: everything else follows from the core ------------------------------------
    def __neg__(self):
        return self * -1.0

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other ** -1.0

    def __rtruediv__(self, other):
        return Value(other) * self ** -1.0
