"""Step 1 - scalar autograd: a Value holds one number, its gradient, and how it was made.

Every operation makes a new Value that remembers its inputs (``_parents``) and a function
``_backward`` that, given the gradient of the output (already in ``out.grad``), adds the
chain-rule contribution to each input's ``.grad``. ``backward()`` visits the graph in reverse
topological order, so each node's gradient is complete before it is passed on.
"""
import math


class Value:
    def __init__(self, data, _parents=()):
        self.data = float(data)
        self.grad = 0.0
        self._parents = _parents
        self._backward = lambda: None

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    # ---- the core: each op computes its output and says how to pass the gradient back ----
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def _backward():
            self.grad += out.grad           # d(a + b)/da = 1
            other.grad += out.grad          # += : a Value used twice gets both contributions
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, exponent):
        if not isinstance(exponent, (int, float)):
            raise TypeError("only a number exponent is supported")
        out = Value(self.data ** exponent, (self,))

        def _backward():
            self.grad += exponent * self.data ** (exponent - 1) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,))

        def _backward():
            self.grad += (self.data > 0) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))

        def _backward():
            self.grad += out.data * out.grad  # d e^x / dx = e^x, already computed
        out._backward = _backward
        return out

    def backward(self):
        """d(self)/d(every Value it depends on), into each one's ``.grad``."""
        # A topological order with an explicit stack: a chain of 10,000 ops would overflow
        # Python's recursion limit with the recursive version.
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents if id(p) not in visited)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

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
