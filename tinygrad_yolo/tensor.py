"""Tensor: an array, the gradient it receives, and the Function that made it.

``backward()`` is the whole reverse-mode engine: order the graph topologically
(iteratively, so 10,000-op chains work), walk it from the output back to the
leaves, hand each Function the gradient of its output and add up what it
returns for its inputs. A tensor used twice receives two contributions.

``Tensor(numpy_array)`` shares the array's memory (like ``torch.from_numpy``; no copy, so
wrapping a batch costs nothing); a list, a Python number or a dtype conversion makes a new
array. Sharing is safe because what an op saves for backward is locked (function.py): writing
the array, or ``.data``, while a graph still holds it fails instead of silently changing the
gradient. ``.clone()`` or ``tg.tensor(np.array(a))`` give a tensor of its own.

Reductions take NumPy's spelling (``axis``, ``keepdims``) and PyTorch's (``dim``, ``keepdim``).
Where the two libraries differ the spelling decides: ``x.max(dim=1)`` returns PyTorch's
``(values, indices)`` pair, ``x.max(axis=1)`` (and ``x.max(1)``) NumPy's values alone.
``x.size`` is NumPy's element count, and calling it is PyTorch's: ``x.size()`` is the shape,
``x.size(1)`` one side.
"""
import collections
import weakref

import numpy as np

from . import backend
from .backend import array_module, device_of, to_device, xp_for
from .function import Function, _tensor_api, is_grad_enabled, is_saved, modifying
from .ops import activation as A
from .ops import elementwise as E
from .ops import matmul as M
from .ops import reduce as R
from .ops import shape as S


class Tensor:
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

    # ---- attributes -------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        if self._ctx is not None and not value:
            raise RuntimeError("requires_grad can only be turned off on a leaf tensor; use .detach()")
        self._requires_grad = bool(value)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: _Size(self.data.size, self.data.shape))
    device = property(lambda self: device_of(self.data))
    is_leaf = property(lambda self: self._ctx is None)
    T = property(lambda self: self.transpose())

    def __len__(self):
        return len(self.data)

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    def __repr__(self):
        extra = f", device='{self.device}'" if self.device != "cpu" else ""
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx.name if not self._ctx.freed else 'freed'}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({backend.to_numpy(self.data)!r}{extra})"

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.data)

    __hash__ = object.__hash__  # __eq__ is elementwise, identity stays the hash

    # ---- conversion -------------------------------------------------------
    def numpy(self):
        """A host NumPy copy of the data."""
        return backend.to_numpy(self.data).copy() if self.device == "cpu" else backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def to(self, device):
        """This tensor on ``device``; differentiable (the gradient moves back)."""
        backend.check_device(device)
        if device == self.device:
            return self
        return E.ToDevice.apply(self, device=device)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        """Differentiable dtype cast (e.g. float32 -> float64 for a gradient check)."""
        if np.dtype(dtype) == self.dtype:
            return self
        return E.Cast.apply(self, dtype=np.dtype(dtype))

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def detach(self):
        """Same data, cut from the graph."""
        return Tensor._from_op(self.data, None, False)

    def zero_grad(self):
        self.grad = None

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return self (PyTorch's spelling)."""
        self.requires_grad = requires_grad
        return self

    def clone(self):
        """A copy with memory of its own; differentiable (the gradient passes straight back)."""
        return E.Clone.apply(self)

    # ---- in place (outside the graph) ---------------------------------------
    # These write self.data directly and are not recorded, so on a tensor that requires grad
    # they run only under no_grad (as optimizer steps do). Through function.modifying, a graph
    # that saved this memory raises at its backward instead of using the new values.
    def _write(self, name, write):
        if self._requires_grad and is_grad_enabled():
            raise RuntimeError(f"{name}() writes in place and is not recorded in the graph: on a tensor "
                               "that requires grad use an out-of-place op, or call it under tg.no_grad()")
        with modifying(self.data):
            write(self.data)
        return self

    def zero_(self):
        return self._write("zero_", lambda a: a.fill(0))

    def fill_(self, value):
        return self._write("fill_", lambda a: a.fill(value))

    def copy_(self, src):
        """Copy ``src`` (a Tensor or array, broadcast to this shape) into this tensor's memory."""
        src = src.data if isinstance(src, Tensor) else src
        if device_of(src) != self.device:
            src = to_device(backend.to_numpy(src), self.device)
        return self._write("copy_", lambda a: array_module(a).copyto(a, src, casting="unsafe"))

    def add_(self, other, alpha=1):
        other = other.data if isinstance(other, Tensor) else other
        return self._write("add_", lambda a: a.__iadd__(other * alpha if alpha != 1 else other))

    def mul_(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return self._write("mul_", lambda a: a.__imul__(other))

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (for studying the graph). The op
        that made it holds it weakly: the graph itself never keeps a tensor alive."""
        if self._ctx is not None:  # a leaf gets its .grad anyway
            self._ctx._retained = weakref.ref(self)

    def register_hook(self, hook):
        """``hook(grad) -> Tensor or None`` runs when this tensor's gradient is complete;
        returning a Tensor replaces the gradient that flows on. Returns a handle with remove().
        A non-leaf tensor's hooks are kept by the op that made it, so they run even if the
        tensor itself is gone by the time of the backward."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require grad")
        node = self._ctx if self._ctx is not None else self
        if node._hooks is None:
            node._hooks = []
        node._hooks.append(hook)
        return _HookHandle(node._hooks, hook)

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
        """(d self / d self, owned): ones, or the caller's ``grad`` checked (and never written to)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: "
                               "no input of the computation had requires_grad=True (or it ran under no_grad)")
        xp = array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element output, got shape "
                                   f"{self.shape}; call backward(grad) with a gradient of that shape")
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

    # ---- operators --------------------------------------------------------
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
    def __getitem__(self, index): return S.GetItem.apply(self, index=_unwrap_index(index))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or not np.isscalar(exponent):
            raise TypeError(f"only a scalar exponent is supported, got {type(exponent).__name__}")
        return E.Pow.apply(self, exponent=exponent)

    # Comparisons give boolean tensors outside the graph (not differentiable).
    def _compare(self, other, op):
        o = other.data if isinstance(other, Tensor) else other
        if isinstance(other, Tensor) and other.device != self.device:
            raise RuntimeError(f"expected both tensors on one device, got {self.device} and {other.device}")
        return Tensor._from_op(op(self.data, o), None, False)

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)

    # ---- elementwise ------------------------------------------------------
    def exp(self): return E.Exp.apply(self)
    def log(self): return E.Log.apply(self)
    def sqrt(self): return E.Sqrt.apply(self)
    def abs(self): return E.Abs.apply(self)
    def clip(self, min=None, max=None): return E.Clip.apply(self, lo=min, hi=max)
    clamp = clip
    def maximum(self, other): return E.Maximum.apply(self, other)
    def minimum(self, other): return E.Minimum.apply(self, other)
    def relu(self): return A.ReLU.apply(self)
    def leaky_relu(self, negative_slope=0.01): return A.LeakyReLU.apply(self, slope=negative_slope)
    def sigmoid(self): return A.Sigmoid.apply(self)
    def tanh(self): return A.Tanh.apply(self)
    def softmax(self, axis=-1, *, dim=None):
        return A.Softmax.apply(self, axis=_pick_axis("softmax", axis, dim, -1))

    def log_softmax(self, axis=-1, *, dim=None):
        return A.LogSoftmax.apply(self, axis=_pick_axis("log_softmax", axis, dim, -1))

    # ---- reductions: axis/keepdims (NumPy) or dim/keepdim (PyTorch) -----------
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("sum", axis, keepdims, dim, keepdim)
        return R.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("mean", axis, keepdims, dim, keepdim)
        return R.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """The maximum over ``axis`` (NumPy: the values). With PyTorch's ``dim=`` it is PyTorch's
        ``(values, indices)`` pair instead. The gradient of tied maxima is shared evenly between
        them (PyTorch's max(dim) gives it all to the index it returns)."""
        return self._extremum("max", axis, keepdims, dim, keepdim)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """As max: values, or with ``dim=`` a ``(values, indices)`` pair."""
        return self._extremum("min", axis, keepdims, dim, keepdim)

    def _extremum(self, name, axis, keepdims, dim, keepdim):
        pair = dim is not None  # PyTorch's spelling: PyTorch's result
        if pair and not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{name}(dim=...) takes one dimension and returns (values, indices), as in "
                            f"PyTorch; for the {name} over several use axis={tuple(dim)!r}")
        axis, keepdims = _reduction_args(name, axis, keepdims, dim, keepdim)
        values = R.Max.apply(self, axis=axis, keepdims=keepdims) if name == "max" else \
            -R.Max.apply(-self, axis=axis, keepdims=keepdims)
        if not pair:
            return values
        arg = self.argmax if name == "max" else self.argmin
        return MinMax(values, arg(axis, keepdims))

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Index of the (first) maximum: over the flattened tensor without an axis. Not
        differentiable: an int64 tensor outside the graph."""
        axis, keepdims = _reduction_args("argmax", axis, keepdims, dim, keepdim)
        return self._arg(array_module(self.data).argmax, "argmax", axis, keepdims)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = _reduction_args("argmin", axis, keepdims, dim, keepdim)
        return self._arg(array_module(self.data).argmin, "argmin", axis, keepdims)

    def _arg(self, fn, name, axis, keepdims):
        if self.size == 0:
            raise ValueError(f"{name} of an empty tensor (shape {self.shape})")
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"{name} takes one axis, got {axis!r}")
        if axis is not None:
            R._normalize_axis(axis, self.ndim)  # a clear error for an axis out of range
        index = fn(self.data, axis=axis, keepdims=keepdims)
        return Tensor._from_op(array_module(self.data).asarray(index, dtype=np.int64), None, False)

    # ---- shape ------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return S.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def transpose(self, *axes):
        """No axes: reverse them; two ints: swap those (PyTorch); more: a permutation (NumPy)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 0:
            axes = tuple(range(self.ndim))[::-1]
        elif len(axes) == 2 and self.ndim != 2:
            perm = list(range(self.ndim))
            a, b = (ax % self.ndim for ax in axes)
            perm[a], perm[b] = perm[b], perm[a]
            axes = tuple(perm)
        return S.Transpose.apply(self, axes=tuple(axes))

    def permute(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return S.Transpose.apply(self, axes=tuple(axes))

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape[:start] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

    def unsqueeze(self, axis):
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def squeeze(self, axis=None):
        if axis is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        axis = axis % self.ndim
        if self.shape[axis] != 1:
            return self
        return self.reshape(self.shape[:axis] + self.shape[axis + 1:])

    def pad(self, pad_width, value=0.0):
        return S.Pad.apply(self, pad_width=_normalize_pad(pad_width, self.ndim), value=value)


class _Size(int):
    """``Tensor.size``: NumPy's element count, an int; called, PyTorch's ``size()``: the shape,
    or with a dimension its length."""

    def __new__(cls, n, shape):
        self = int.__new__(cls, n)
        self.shape = shape
        return self

    def __call__(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __reduce__(self):  # pickles (and copies) as the plain int it is
        return int, (int(self),)


MinMax = collections.namedtuple("MinMax", ["values", "indices"])
MinMax.__doc__ = "x.max(dim=...) / x.min(dim=...): PyTorch's (values, indices)."


def _pick_axis(op, axis, dim, default):
    """``dim`` (PyTorch) when given, else ``axis`` (NumPy); both at once is an error."""
    if dim is None:
        return axis
    if axis != default:
        raise TypeError(f"{op}() got both axis={axis!r} and dim={dim!r}; pass one of them")
    return tuple(dim) if isinstance(dim, list) else dim


def _reduction_args(op, axis, keepdims, dim, keepdim):
    axis = _pick_axis(op, axis, dim, None)
    if isinstance(axis, list):
        axis = tuple(axis)
    if keepdim is not None:
        if keepdims is not False and bool(keepdims) != bool(keepdim):
            raise TypeError(f"{op}() got keepdims={keepdims!r} and keepdim={keepdim!r}; pass one of them")
        keepdims = keepdim
    return axis, bool(keepdims)


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _topological_order(root):
    """Graph nodes (ops, and leaf tensors that need a gradient), each after all of its inputs
    (iterative DFS: deep networks don't hit Python's recursion limit)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if not isinstance(node, Tensor) and not node.freed:
            for p in node.parents:
                if p is not None and id(p) not in visited:
                    stack.append((p, False))
    return order


class _Gradients:
    """The gradients of one backward, by graph node: (array, owned). ``owned`` says the engine made
    the array, so it may add the next contribution into it in place; otherwise the array is
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
            g, owned = _unwrap(replaced, g), False
    return g, owned


def _op_backward(fn, g, owned):
    """fn.backward(g) as a tuple, after the checks (a freed graph, saved arrays written since),
    retain_grad() and the observers (tinygrad_yolo.debug)."""
    if fn.freed:
        raise RuntimeError(
            f"trying to backward through the graph a second time (op {type(fn).__name__} was freed "
            "after the first backward); use backward(retain_graph=True) the first time")
    retained = fn._retained() if fn._retained is not None else None
    if retained is not None:  # retain_grad() on the tensor this op made, still alive
        _accumulate_leaf(retained, g, owned)
    if fn._saved_locks:
        fn.check_saved()  # raises if what forward saved was written in place since
    for obs in Function._observers:
        obs.before_backward(fn, g)
    in_grads = fn.backward(g)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    for obs in Function._observers:
        obs.after_backward(fn, in_grads)
    return in_grads


def _input_gradient(pg, meta, g):
    """(gradient, owned) for one input of an op whose output got ``g``: summed back over the
    broadcast axes and cast to the input's (shape, dtype) ``meta``; owned unless it shares g's memory."""
    if isinstance(pg, np.generic):  # indexing a 1-d gradient can give a scalar
        pg = np.asarray(pg)
    # a gradient that crossed devices (the .to() op) is a fresh copy
    owned = device_of(pg) != device_of(g) or not array_module(pg).may_share_memory(pg, g)
    shape, dtype = meta
    if pg.shape != shape:
        pg, owned = _sum_to(pg, shape), True
    if pg.dtype != dtype:
        pg, owned = pg.astype(dtype), True
    return pg, owned


def _sum_to(g, shape):
    """Sum a broadcast gradient back to ``shape`` (the input's shape)."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def zero_grads(tensors, set_to_none=True):
    """Clear the gradients of ``tensors``: drop them (the default, as PyTorch does) or fill
    them with zeros in place (reusing their memory)."""
    for t in tensors:
        if t.grad is None:
            continue
        if set_to_none:
            t.grad = None
        else:
            with modifying(t.grad.data):
                t.grad.data[...] = 0


def _accumulate_leaf(t, g, owned):
    if t.grad is None:
        t.grad = Tensor._from_op(g if owned else g.copy(), None, False)
    elif is_saved(t.grad.data):  # a live graph uses this .grad: leave it as it is
        t.grad = Tensor._from_op(t.grad.data + g, None, False)
    else:
        t.grad.data += g  # leaf gradients add up across backward calls until zeroed


def _unwrap(x, like):
    data = x.data if isinstance(x, Tensor) else x
    if data.shape != like.shape:
        raise ValueError(f"hook returned a gradient of shape {data.shape}, expected {like.shape}")
    return data


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _normalize_pad(pad_width, ndim):
    """NumPy-style pad widths: int, (before, after) for every axis, or one pair per axis."""
    if isinstance(pad_width, int):
        return ((pad_width, pad_width),) * ndim
    pw = tuple(tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in pad_width)
    if len(pw) == 1:
        pw = pw * ndim
    if len(pw) != ndim:
        raise ValueError(f"pad_width has {len(pw)} entries but the tensor has {ndim} dimensions")
    return pw


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


_tensor_api.Tensor, _tensor_api.as_tensor = Tensor, as_tensor  # what Function.apply builds


# ---- free functions (tg.zeros, tg.stack, ...) ---------------------------------
def tensor(data, requires_grad=False, device=None, dtype=None):
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def _creation(fill):
    def make(*shape, dtype=np.float32, device="cpu", requires_grad=False):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Tensor(fill(xp_for(device), tuple(shape), dtype), requires_grad=requires_grad)
    return make


zeros = _creation(lambda xp, shape, dtype: xp.zeros(shape, dtype=dtype))
ones = _creation(lambda xp, shape, dtype: xp.ones(shape, dtype=dtype))
randn = _creation(lambda xp, shape, dtype: xp.random.standard_normal(shape).astype(dtype))
rand = _creation(lambda xp, shape, dtype: xp.random.random_sample(shape).astype(dtype))


def zeros_like(t, requires_grad=False):
    return Tensor(array_module(t.data).zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t, requires_grad=False):
    return Tensor(array_module(t.data).ones_like(t.data), requires_grad=requires_grad)


def arange(*args, dtype=np.float32, device="cpu"):
    return Tensor(xp_for(device).arange(*args, dtype=dtype))


def concatenate(tensors, axis=0):
    return S.Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=0):
    return S.Stack.apply(*tensors, axis=axis)


def where(condition, a, b):
    cond = condition.data if isinstance(condition, Tensor) else condition
    return E.Where.apply(a, b, condition=cond)


def maximum(a, b):
    return E.Maximum.apply(a, b)


def minimum(a, b):
    return E.Minimum.apply(a, b)
