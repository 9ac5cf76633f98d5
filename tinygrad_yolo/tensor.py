"""Tensor: an array, the gradient it receives, and the Function that made it.

``backward()`` is the whole reverse-mode engine: order the graph topologically (iteratively, so
10,000-op chains work), walk it from the output back to the leaves, hand each Function the
gradient of its output and add up what it returns for its inputs. A tensor used twice receives
two contributions.

``Tensor(numpy_array)`` shares the array's memory (like ``torch.from_numpy``; no copy, so wrapping
a batch costs nothing); a list, a Python number or a dtype conversion makes a new array.
``.clone()`` gives a tensor of its own. The rest of what users expect of a tensor -- PyTorch's
and NumPy's spellings of reductions, in-place writes, hooks -- is in tensor_methods.py; the free
constructors (``tg.zeros``, ``tg.stack``, ...) are in creation.py.
"""
import numpy as np

from . import backend, saved
from .backend import array_module, device_of, to_device
from .function import Function
from .ops import activation as A
from .ops import copy as C
from .ops import elementwise as E
from .ops import matmul as M
from .ops import reduce as R
from .ops import shape as shape_ops
from .tensor_methods import TensorMethods, reduction_args


class Tensor(TensorMethods):
    # Make ``numpy_array + tensor`` call Tensor.__radd__ instead of numpy broadcasting.
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, device=None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if hasattr(data, "__array_interface__") or backend.is_cuda_array(data):
            arr = data if dtype is None else data.astype(dtype, copy=False)
            if isinstance(arr, np.generic):  # numpy scalar -> 0-d array
                arr = np.asarray(arr)
        else:
            arr = np.asarray(data, dtype=dtype)
            # Python numbers and lists default to float32 (bool stays bool), like a DL framework.
            if dtype is None and arr.dtype.kind in "fiu":
                arr = arr.astype(np.float32)
        if device is not None:
            arr = to_device(arr, device)
        self.data = arr
        self.grad = None
        self._ctx = None  # the Function that produced this tensor (None for leaves)
        self._hooks = None  # a leaf's hooks (a non-leaf's live on its _ctx)
        self.requires_grad = requires_grad

    @classmethod
    def _from_op(cls, data, ctx, requires_grad):
        """Fast constructor used by Function.apply (no validation, no copies)."""
        t = cls.__new__(cls)
        if isinstance(data, np.generic):  # numpy reductions may hand back scalars
            data = np.asarray(data)
        t.data, t.grad, t._ctx, t._hooks = data, None, ctx, None
        t._requires_grad = requires_grad
        return t

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        if self._ctx is not None and not value:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; "
                               "use .detach()")
        self._requires_grad = bool(value)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    device = property(lambda self: device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)

    def numpy(self):
        """A host NumPy copy of the data."""
        host = backend.to_numpy(self.data)
        return host.copy() if self.device == "cpu" else host

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def to(self, device):
        """This tensor on ``device``; differentiable (the gradient moves back)."""
        backend.check_device(device)
        return self if device == self.device else C.ToDevice.apply(self, device=device)

    def astype(self, dtype):
        """Differentiable dtype cast (e.g. float32 -> float64 for a gradient check)."""
        return self if np.dtype(dtype) == self.dtype else C.Cast.apply(self, dtype=np.dtype(dtype))

    def detach(self):
        """Same data, cut from the graph."""
        return Tensor._from_op(self.data, None, False)

    def clone(self):
        """A copy with memory of its own; differentiable (the gradient passes straight back)."""
        return C.Clone.apply(self)

    # ---- the engine -------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is the upstream gradient (required unless self has one element).
        The graph's saved arrays are freed afterwards unless ``retain_graph=True``.
        """
        # The graph's nodes are ops (Functions) and the leaves that need a gradient (Tensors).
        root = self._ctx if self._ctx is not None else self
        grads = _Gradients(root, *self._first_gradient(grad))
        for node in reversed(_topological_order(root)):  # every node after all that use it
            g, owned = grads.pop(node)
            if g is None:  # no gradient flows here (e.g. a branch whose op returned None)
                if not retain_graph and not isinstance(node, Tensor):
                    node.release()
                continue
            g, owned = _run_hooks(node, g, owned)
            if isinstance(node, Tensor):  # a leaf: its gradient is complete
                _accumulate_leaf(node, g, owned)
                continue
            in_grads = _op_backward(node, g, owned)  # the op's own rule: a gradient per input
            for parent, meta, pg in zip(node.parents, node.input_meta, in_grads):
                if pg is not None and parent is not None:
                    grads.add(parent, *_input_gradient(pg, meta, g))  # summed over every use
            del g, in_grads  # free this gradient as soon as it is used
            if not retain_graph:
                node.release()

    def _first_gradient(self, grad):
        """(d self / d self, owned): ones, or the caller's ``grad`` checked (never written to)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of "
                               "the computation had requires_grad=True (or it ran under no_grad)")
        xp = array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element output, "
                                   f"got shape {self.shape}; call backward(grad) with a gradient "
                                   "of that shape")
            return xp.ones_like(self.data), True
        g = grad.data if isinstance(grad, Tensor) else grad
        if not hasattr(g, "shape"):
            g = xp.asarray(g, dtype=self.dtype)
        if device_of(g) != self.device:
            raise RuntimeError(f"gradient is on {device_of(g)} but the tensor is on {self.device}")
        if g.shape != self.shape:
            raise ValueError(f"gradient shape {g.shape} does not match tensor shape {self.shape}")
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        return g, False  # the caller's array: never written to

    # ---- operators: each hands the work to an op -------------------------
    def __add__(self, other): return E.Add.apply(self, other)
    def __radd__(self, other): return E.Add.apply(other, self)
    def __sub__(self, other): return E.Sub.apply(self, other)
    def __rsub__(self, other): return E.Sub.apply(other, self)
    def __mul__(self, other): return E.Mul.apply(self, other)
    def __rmul__(self, other): return E.Mul.apply(other, self)
    def __truediv__(self, other): return E.Div.apply(self, other)
    def __rtruediv__(self, other): return E.Div.apply(other, self)
    def __neg__(self): return E.Neg.apply(self)
    def __matmul__(self, other): return M.MatMul.apply(self, other)
    def __rmatmul__(self, other): return M.MatMul.apply(other, self)

    def __getitem__(self, index):
        return shape_ops.GetItem.apply(self, index=unwrap_index(index))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or not np.isscalar(exponent):
            raise TypeError(f"only a scalar exponent is supported, got {type(exponent).__name__}")
        return E.Pow.apply(self, exponent=exponent)

    def exp(self): return E.Exp.apply(self)
    def log(self): return E.Log.apply(self)
    def sqrt(self): return E.Sqrt.apply(self)
    def abs(self): return E.Abs.apply(self)
    def clip(self, min=None, max=None): return E.Clip.apply(self, lo=min, hi=max)
    def maximum(self, other): return E.Maximum.apply(self, other)
    def minimum(self, other): return E.Minimum.apply(self, other)
    def relu(self): return A.ReLU.apply(self)
    def leaky_relu(self, negative_slope=0.01): return A.LeakyReLU.apply(self, slope=negative_slope)
    def sigmoid(self): return A.Sigmoid.apply(self)
    def tanh(self): return A.Tanh.apply(self)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Sum over ``axis`` (NumPy's spelling) or ``dim`` (PyTorch's)."""
        axis, keepdims = reduction_args("sum", axis, keepdims, dim, keepdim)
        return R.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = reduction_args("mean", axis, keepdims, dim, keepdim)
        return R.Mean.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return shape_ops.Reshape.apply(self, shape=tuple(shape))


def _topological_order(root):
    """Graph nodes (ops, and leaf tensors that need a gradient), each after all of its inputs
    (iterative DFS: deep networks don't hit Python's recursion limit)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:  # all of its inputs are in the order already
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))  # comes back to it after its inputs
        if not isinstance(node, Tensor) and not node.freed:
            for p in node.parents:
                if p is not None and id(p) not in visited:
                    stack.append((p, False))
    return order


class _Gradients:
    """The gradients of one backward, by graph node: (array, owned). ``owned`` says the engine
    made the array, so it may add the next contribution into it in place; otherwise the array is
    borrowed (the caller's, or a view of another gradient) and is never written to."""

    def __init__(self, root, g, owned):
        self.arrays = {id(root): (g, owned)}

    def pop(self, node):
        return self.arrays.pop(id(node), (None, False))

    def add(self, node, g, owned):
        prev = self.arrays.get(id(node))
        if prev is None:
            self.arrays[id(node)] = (g, owned)
        elif prev[1]:
            prev[0].__iadd__(g)  # our own buffer: accumulate in place
        else:  # asarray: NumPy adds two 0-d arrays into a scalar, which has no __iadd__
            self.arrays[id(node)] = (array_module(g).asarray(prev[0] + g), True)


def _run_hooks(node, g, owned):
    """The hooks of a leaf, or of the tensor an op made: each may replace the gradient."""
    for hook in node._hooks or ():
        replaced = hook(Tensor._from_op(g, None, False))
        if replaced is not None:
            data = replaced.data if isinstance(replaced, Tensor) else replaced
            if data.shape != g.shape:
                raise ValueError(f"hook returned a gradient of shape {data.shape}, "
                                 f"expected {g.shape}")
            g, owned = data, False
    return g, owned


def _op_backward(fn, g, owned):
    """fn.backward(g) as a tuple, after the checks (a freed graph, saved arrays written since),
    retain_grad() and the observers (tinygrad_yolo.debug)."""
    if fn.freed:
        raise RuntimeError(
            f"trying to backward through the graph a second time (op {type(fn).__name__} was "
            "freed after the first backward); use backward(retain_graph=True) the first time")
    retained = fn._retained() if fn._retained is not None else None
    if retained is not None:  # retain_grad() on the tensor this op made, still alive
        _accumulate_leaf(retained, g, owned)
    saved.check_unchanged(fn)  # raises if what forward saved was written in place since
    for observer in Function._observers:
        observer.before_backward(fn, g)
    in_grads = fn.backward(g)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    for observer in Function._observers:
        observer.after_backward(fn, in_grads)
    return in_grads


def _input_gradient(pg, meta, g):
    """(gradient, owned) for one input of an op whose output got ``g``: summed back over the
    broadcast axes and cast to the input's (shape, dtype) ``meta``; owned unless it shares g's
    memory."""
    if isinstance(pg, np.generic):  # indexing a 1-d gradient can give a scalar
        pg = np.asarray(pg)
    # a gradient that crossed devices (the .to() op) is a fresh copy
    owned = device_of(pg) != device_of(g) or not array_module(pg).may_share_memory(pg, g)
    shape, dtype = meta
    if pg.shape != shape:
        pg, owned = sum_to(pg, shape), True
    if pg.dtype != dtype:
        pg, owned = pg.astype(dtype), True
    return pg, owned


def sum_to(g, shape):
    """Sum a broadcast gradient back to ``shape`` (the input's shape)."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _accumulate_leaf(t, g, owned):
    if t.grad is None:
        t.grad = Tensor._from_op(g if owned else g.copy(), None, False)
    elif saved.is_saved(t.grad.data):  # a live graph uses this .grad: leave it as it is
        t.grad = Tensor._from_op(t.grad.data + g, None, False)
    else:
        t.grad.data += g  # leaf gradients add up across backward calls until zeroed


def unwrap_index(index):
    """An index with Tensors in it as one of arrays (for ``x[index]``)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def as_tensor(x, like=None):
    """``x`` as a Tensor: Tensors pass through; arrays are wrapped without a copy;
    Python scalars take ``like``'s dtype (when floating) and device."""
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "__array_interface__") or backend.is_cuda_array(x):
        return Tensor(x)
    if like is not None:
        xp = array_module(like.data)
        dtype = like.dtype if like.dtype.kind == "f" else None
        arr = xp.asarray(x, dtype=dtype)
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        return Tensor._from_op(arr, None, False)
    return Tensor(x)
