"""Step 2 - Function and backward() on arrays: the engine of tinygrad_yolo in miniature.

A Function subclass computes ``forward`` on raw NumPy arrays and ``backward`` on the gradient
of its output, returning one gradient per input. ``Function.apply`` is the bridge to Tensors:
it runs forward and, when some input needs a gradient, records the graph edge (the Function
becomes the result's ``_ctx`` and remembers its input Tensors as ``parents``).
``Tensor.backward`` orders the graph topologically and walks it from the output back,
handing each Function the gradient of its output and adding up what it returns for its
inputs. (The real engine, tinygrad_yolo/tensor.py and function.py, does the same, plus
broadcasting - step 3 - and a graph that links ops instead of tensors.)
"""
import numpy as np


class Tensor:
    def __init__(self, data, requires_grad=False):
        self.data = np.asarray(data, dtype=np.float64)
        self.requires_grad = requires_grad
        self.grad = None   # a NumPy array after backward()
        self._ctx = None   # the Function that made this tensor (None for a leaf)

    def backward(self):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires a gradient
        (``self`` must have one element)."""
        # 1. topological order over tensors, iteratively (deep graphs: no recursion limit)
        order, visited, stack = [], set(), [(self, False)]
        while stack:
            t, expanded = stack.pop()
            if expanded:
                order.append(t)
            elif id(t) not in visited:
                visited.add(id(t))
                stack.append((t, True))
                if t._ctx is not None:
                    stack.extend((p, False) for p in t._ctx.parents if id(p) not in visited)
        # 2. one walk from the output back; grads[id(t)] is complete when t is reached,
        #    because every tensor that used t comes later in the order
        grads = {id(self): np.ones_like(self.data)}
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._ctx is None:  # a leaf: keep its gradient (adding to what earlier calls left)
                if t.requires_grad:
                    t.grad = g if t.grad is None else t.grad + g
                continue
            in_grads = t._ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg in zip(t._ctx.parents, in_grads):
                if pg is None or not parent.requires_grad:
                    continue
                grads[id(parent)] = pg if id(parent) not in grads else grads[id(parent)] + pg

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
        fn = cls()
        fn.needs_input_grad = tuple(t.requires_grad for t in inputs)
        out = Tensor(fn.forward(*[t.data for t in inputs]))
        if any(fn.needs_input_grad):
            out.requires_grad = True
            out._ctx = fn
            fn.parents = inputs
        return out


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
