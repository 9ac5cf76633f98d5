"""The rest of a Tensor's methods: what users of PyTorch and NumPy expect beyond the engine.

tensor.py holds the Tensor, its operators and backward; this mixin adds

* reductions and shapes in both spellings: NumPy's ``axis``/``keepdims`` and PyTorch's
  ``dim``/``keepdim``. Where the two libraries differ the spelling decides: ``x.max(dim=1)``
  returns PyTorch's ``(values, indices)`` pair, ``x.max(axis=1)`` (and ``x.max(1)``) NumPy's
  values alone. ``x.size`` is NumPy's element count, and calling it is PyTorch's: ``x.size()``
  is the shape, ``x.size(1)`` one side;
* comparisons (boolean tensors outside the graph) and argmax / argmin;
* in-place writes (``zero_``, ``copy_``, ...), which go through saved.modifying, so a graph that
  saved the memory raises at its backward instead of using the new values;
* hooks and ``retain_grad()``.
"""
import collections
import weakref

import numpy as np

from .backend import array_module, device_of, to_device, to_numpy
from .function import is_grad_enabled
from .ops import activation as A
from .ops import reduce as R
from .ops import shape as shape_ops
from .saved import modifying


class TensorMethods:
    size = property(lambda self: Size(self.data.size, self.data.shape))
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
        return f"Tensor({to_numpy(self.data)!r}{extra})"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.data)

    def tolist(self):
        return to_numpy(self.data).tolist()

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def zero_grad(self):
        self.grad = None

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return self (PyTorch's spelling)."""
        self.requires_grad = requires_grad
        return self

    # ---- comparisons: boolean tensors outside the graph (not differentiable) ---------------
    def _compare(self, other, op):
        if isinstance(other, TensorMethods) and other.device != self.device:
            raise RuntimeError(f"expected both tensors on one device, got {self.device} "
                               f"and {other.device}")
        other = other.data if isinstance(other, TensorMethods) else other
        return outside_graph(op(self.data, other))

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)
    __hash__ = object.__hash__  # __eq__ is elementwise, identity stays the hash

    # ---- both spellings ----------------------------------------------------------------------
    def clamp(self, min=None, max=None):
        return self.clip(min, max)

    def softmax(self, axis=-1, *, dim=None):
        return A.Softmax.apply(self, axis=pick_axis("softmax", axis, dim, -1))

    def log_softmax(self, axis=-1, *, dim=None):
        return A.LogSoftmax.apply(self, axis=pick_axis("log_softmax", axis, dim, -1))

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
            raise TypeError(f"{name}(dim=...) takes one dimension and returns (values, indices), "
                            f"as in PyTorch; for the {name} over several use axis={tuple(dim)!r}")
        axis, keepdims = reduction_args(name, axis, keepdims, dim, keepdim)
        if name == "max":
            values = R.Max.apply(self, axis=axis, keepdims=keepdims)
        else:
            values = -R.Max.apply(-self, axis=axis, keepdims=keepdims)
        if not pair:
            return values
        arg = self.argmax if name == "max" else self.argmin
        return MinMax(values, arg(axis, keepdims))

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Index of the (first) maximum: over the flattened tensor without an axis. Not
        differentiable: an int64 tensor outside the graph."""
        axis, keepdims = reduction_args("argmax", axis, keepdims, dim, keepdim)
        return self._arg(array_module(self.data).argmax, "argmax", axis, keepdims)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis, keepdims = reduction_args("argmin", axis, keepdims, dim, keepdim)
        return self._arg(array_module(self.data).argmin, "argmin", axis, keepdims)

    def _arg(self, fn, name, axis, keepdims):
        if self.data.size == 0:
            raise ValueError(f"{name} of an empty tensor (shape {self.shape})")
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"{name} takes one axis, got {axis!r}")
        if axis is not None:
            R.normalize_axis(axis, self.ndim)  # a clear error for an axis out of range
        index = fn(self.data, axis=axis, keepdims=keepdims)
        return outside_graph(array_module(self.data).asarray(index, dtype=np.int64))

    def view(self, *shape):
        return self.reshape(*shape)

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
        return shape_ops.Transpose.apply(self, axes=tuple(axes))

    def permute(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return shape_ops.Transpose.apply(self, axes=tuple(axes))

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

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
        return shape_ops.Pad.apply(self, pad_width=normalize_pad(pad_width, self.ndim), value=value)

    # ---- in place (outside the graph) ----------------------------------------------------------
    # These write self.data directly and are not recorded, so on a tensor that requires grad
    # they run only under no_grad (as optimizer steps do).
    def _write(self, name, write):
        if self._requires_grad and is_grad_enabled():
            raise RuntimeError(f"{name}() writes in place and is not recorded in the graph: on a "
                               "tensor that requires grad use an out-of-place op, or call it "
                               "under tg.no_grad()")
        with modifying(self.data):
            write(self.data)
        return self

    def zero_(self):
        return self._write("zero_", lambda a: a.fill(0))

    def fill_(self, value):
        return self._write("fill_", lambda a: a.fill(value))

    def copy_(self, src):
        """Copy ``src`` (a Tensor or array, broadcast to this shape) into this tensor's memory."""
        src = src.data if isinstance(src, TensorMethods) else src
        if device_of(src) != self.device:
            src = to_device(to_numpy(src), self.device)
        return self._write("copy_", lambda a: array_module(a).copyto(a, src, casting="unsafe"))

    def add_(self, other, alpha=1):
        other = other.data if isinstance(other, TensorMethods) else other
        return self._write("add_", lambda a: a.__iadd__(other * alpha if alpha != 1 else other))

    def mul_(self, other):
        other = other.data if isinstance(other, TensorMethods) else other
        return self._write("mul_", lambda a: a.__imul__(other))

    # ---- hooks ---------------------------------------------------------------------------------
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
        return HookHandle(node._hooks, hook)


class Size(int):
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


class HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def pick_axis(op, axis, dim, default):
    """``dim`` (PyTorch) when given, else ``axis`` (NumPy); both at once is an error."""
    if dim is None:
        return axis
    if axis != default:
        raise TypeError(f"{op}() got both axis={axis!r} and dim={dim!r}; pass one of them")
    return tuple(dim) if isinstance(dim, list) else dim


def reduction_args(op, axis, keepdims, dim, keepdim):
    """(axis, keepdims) from either spelling; both spellings at once is an error."""
    axis = pick_axis(op, axis, dim, None)
    if isinstance(axis, list):
        axis = tuple(axis)
    if keepdim is not None:
        if keepdims is not False and bool(keepdims) != bool(keepdim):
            raise TypeError(f"{op}() got keepdims={keepdims!r} and keepdim={keepdim!r}; "
                            "pass one of them")
        keepdims = keepdim
    return axis, bool(keepdims)


def normalize_pad(pad_width, ndim):
    """NumPy-style pad widths: int, (before, after) for every axis, or one pair per axis."""
    if isinstance(pad_width, int):
        return ((pad_width, pad_width),) * ndim
    pw = tuple(tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in pad_width)
    if len(pw) == 1:
        pw = pw * ndim
    if len(pw) != ndim:
        raise ValueError(f"pad_width has {len(pw)} entries but the tensor has {ndim} dimensions")
    return pw


def outside_graph(data):
    """A Tensor of ``data`` that belongs to no graph (comparisons, argmax)."""
    from .tensor import Tensor  # tensor.py imports this module, so only at call time
    return Tensor._from_op(data, None, False)


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
