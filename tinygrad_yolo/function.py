"""Function: one node of the computation graph.

A Function subclass implements ``forward`` on raw arrays (numpy or cupy) and
``backward`` on gradient arrays; ``apply`` wraps it for Tensors and records the
graph edge only when some input needs a gradient and grad mode is on.

The graph links ops, not tensors: a recorded Function keeps, per input, its graph node
(the Function that made it, the tensor itself if it is a leaf that needs a gradient, or
None if no gradient flows there) and its shape and dtype. It never holds an intermediate
tensor, so once the forward is over the only activations alive are those some op saved
for its backward (PyTorch's autograd works the same way). A non-leaf tensor's hooks and
retain_grad() live on the Function that made it (``_hooks``, ``_retained``).

    class Mul(Function):
        def forward(self, a, b):
            self.a, self.b = a, b          # save only what backward needs
            return a * b
        def backward(self, g):
            return g * self.b, g * self.a  # one gradient per input (None = not needed)

Contract for ``backward``: return one array (or None) per input, each a new array
or ``g`` itself / a view of ``g``. The engine sums broadcast gradients back to
each input's shape, casts them to its dtype, and copies borrowed ones before a
leaf keeps them.

Saved arrays are locked. Whatever ``forward`` saved (every array attribute of the op)
must still hold the same values when ``backward`` reads them, or the gradient is silently
wrong. So while a recorded op is alive, the memory of each array it saved is made
read-only (NumPy's ``flags.writeable``, as MyGrad does): the array that owns the memory,
the saved array, and the ``.data`` of any input or output tensor that shares it. A
write such as ``w.data[...] = 100`` -- or to the NumPy array ``w`` was made from --
then fails at once ("assignment destination is read-only"). The flags are restored when
the op is released (after its backward) or garbage-collected; writes that were allowed
before are allowed again. In-place writes through the engine's API (``Tensor.copy_``,
``zero_``, ..., ``nn.utils.clip_grad_norm_``) go through ``modifying()``: they proceed
and bump the memory's version, and the backward of every op that saved it raises an
error naming the op and the input, as PyTorch's version counters do. CuPy arrays have
no writeable flag, so on the GPU only those versioned writes are caught; a raw write to
a CuPy ``.data`` is not.
"""
import threading
import weakref

import numpy as np

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


class _GradMode:
    """Context manager (and decorator) switching graph recording off or on."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.prev = is_grad_enabled()
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def no_grad():
    """``with tg.no_grad():`` — ops inside record nothing (inference, optimizer steps)."""
    return _GradMode(False)


def enable_grad():
    """``with tg.enable_grad():`` — record again inside a no_grad block."""
    return _GradMode(True)


class Function:
    # Every subclass is registered so tests (and `tinygrad-yolo gradcheck`) can
    # prove that no differentiable op slipped in without a gradient check.
    registry = {}

    # Instrumentation points (tinygrad_yolo.debug): called around every op when set.
    _observers = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Function.registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} has no backward (it is not differentiable)")

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on Tensors (or Python scalars / arrays) and return a Tensor."""
        tensors = _as_tensors(inputs, _tensor_api.as_tensor)
        fn = cls(**kwargs) if kwargs else cls()
        fn.needs_input_grad = tuple(t.requires_grad for t in tensors)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        if Function._observers:
            for obs in Function._observers:
                obs.before_forward(fn, tensors)
        try:
            out = fn.forward(*[t.data for t in tensors])
        except ValueError as e:  # name the op and the shapes instead of NumPy's internals
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{cls.__name__} on input shapes {shapes}: {e}") from None
        result = _tensor_api.Tensor._from_op(out, fn if record else None, record)
        if _locks and isinstance(result.data, np.ndarray) and not result.data.flags.writeable:
            _note_view_of_locked(result.data)  # a view of locked memory: writable again with it
        if record:
            _lock_saved(fn, tensors, result)
            fn.parents = [_node(t) for t in tensors]
            fn.input_meta = [(t.data.shape, t.data.dtype) for t in tensors]
        if Function._observers:
            for obs in Function._observers:
                obs.after_forward(fn, tensors, result)
        return result

    def release(self):
        """Drop saved arrays and parents after backward (unless retain_graph), unlocking them."""
        if self._saved_locks:
            _unlock_saved(self)
        self.__dict__.clear()
        self.freed = True

    def __del__(self):  # a graph dropped without a backward unlocks what it saved
        if self.__dict__.get("_saved_locks"):
            _unlock_saved(self)

    def check_saved(self):
        """Raise if memory this op saved was written in place since its forward (see modifying)."""
        for lock, version, what in self._saved_locks:
            if lock.version != version:
                raise RuntimeError(
                    f"{self.name}: {_describe(what)}, which it saved for backward, was modified in place "
                    f"after the forward (version {lock.version}, the forward saw {version}), so the "
                    "gradient would use the new values. Run the forward again after the change, or "
                    "change a copy.")

    freed = False
    _saved_locks = ()  # (lock, version at forward, what) for each block of memory this op saved
    _hooks = None      # hooks registered on the output tensor (Tensor.register_hook)
    _retained = None   # weakref to the output tensor after its retain_grad()

    @property
    def name(self):
        return type(self).__name__


class _tensor_api:
    """Tensor and as_tensor, for Function.apply. tensor.py imports this module (through the
    ops), so it cannot be imported here at the top; tensor.py fills these in once, as it loads,
    instead of apply importing them on every call."""
    Tensor = as_tensor = None


def _node(t):
    """The graph node an input is reached through: the op that made it, the tensor itself for a
    leaf that needs a gradient, None where no gradient flows."""
    if not t.requires_grad:
        return None
    return t._ctx if t._ctx is not None else t


def _as_tensors(inputs, as_tensor):
    """Tensors for every input; Python scalars take the first tensor's dtype and
    device, so ``x * 2.0`` keeps float32 and never mixes devices."""
    like = next((x for x in inputs if hasattr(x, "_ctx")), None)
    tensors = [as_tensor(x, like) for x in inputs]
    if len(tensors) > 1:
        dev = tensors[0].device
        for t in tensors[1:]:
            if t.device != dev:
                raise RuntimeError(
                    f"expected all tensors on one device, got {dev} and {t.device} "
                    f"(move one with .to({dev!r}) or .to({t.device!r}))")
    return tensors


# ---- locking what ops saved ------------------------------------------------------------------
class _Lock:
    """One block of memory that live ops saved: its owning array, how many ops hold it, its
    version (bumped by every write through modifying()), and the arrays made read-only with it."""
    __slots__ = ("owner", "count", "version", "views", "dependents")

    def __init__(self, owner):
        self.owner, self.count, self.version = owner, 0, 0
        self.views = []       # arrays over this memory that we made read-only (restored with it)
        self.dependents = []  # weak references to op outputs that were born read-only views of it


_locks = {}  # id(owning array) -> _Lock, while some live op holds it
_locks_mutex = threading.Lock()


def _array_types():
    """(numpy.ndarray,), plus cupy.ndarray once CuPy is loaded (it is only ever loaded by backend)."""
    from . import backend
    return _NUMPY_ONLY if backend._cupy is None else (np.ndarray, backend._cupy.ndarray)


_NUMPY_ONLY = (np.ndarray,)


def _owner(a, types=_NUMPY_ONLY):
    """The array that owns a's memory: views point at it through ``.base`` (as_strided views
    through a helper object that has a ``.base`` too)."""
    node = a.base
    while node is not None:
        if isinstance(node, types):
            a = node
        node = getattr(node, "base", None)
    return a


def _saved_arrays(fn, types):
    """[(name, array)] for every array attribute of ``fn`` (also inside a tuple or list)."""
    found = []
    for name, v in fn.__dict__.items():
        if isinstance(v, types):
            found.append((name, v))
        elif (type(v) is tuple or type(v) is list) and name != "needs_input_grad":
            for k, item in enumerate(v):
                if isinstance(item, types):
                    found.append((f"{name}[{k}]", item))
    return found


def _lock_saved(fn, tensors, result):
    """After a recorded forward: lock the memory of every array ``fn`` saved, together with the
    ``.data`` of the inputs and the output that share it."""
    types = _array_types()
    saved = _saved_arrays(fn, types)
    if not saved:
        return
    blocks = {}  # id(owner) -> [owner, arrays over it, what it is]
    for name, arr in saved:
        owner = _owner(arr, types)
        block = blocks.get(id(owner))
        if block is None:
            block = blocks[id(owner)] = [owner, [], ("array", name, arr.shape, arr.dtype)]
        block[1].append(arr)
    for k, t in enumerate(tensors):
        block = blocks.get(id(_owner(t.data, types)))
        if block is not None:
            block[1].append(t.data)
            if block[2][0] != "input":
                block[2] = ("input", k, t.shape, t.dtype, t._ctx is None)
    block = blocks.get(id(_owner(result.data, types)))
    if block is not None:
        block[1].append(result.data)
        if block[2][0] == "array":
            block[2] = ("output", None, result.shape, result.dtype)
    held = []
    with _locks_mutex:
        for owner, arrays, what in blocks.values():
            lock = _locks.get(id(owner))
            numpy = isinstance(owner, np.ndarray)
            if lock is None:
                if numpy and not owner.flags.writeable:
                    continue  # read-only already, and not by us: nobody can write it
                lock = _locks[id(owner)] = _Lock(owner)
                if numpy:
                    owner.flags.writeable = False
            lock.count += 1
            if numpy:
                for a in arrays:
                    if a is not owner and a.flags.writeable:
                        a.flags.writeable = False
                        lock.views.append(a)
            held.append((lock, lock.version, what))
    if held:
        fn._saved_locks = held


def _set_writeable(lock, flag, extra=()):
    """Switch the memory of ``lock`` writable (the owner first: a view can only follow it) or back."""
    if not isinstance(lock.owner, np.ndarray):
        return  # CuPy: no flags
    arrays = [lock.owner] + lock.views + [a for a in (r() for r in lock.dependents) if a is not None]
    for a in list(arrays) + list(extra):
        try:
            a.flags.writeable = flag
        except ValueError:  # a view that can never be writable (a broadcast), or not by us
            pass


def _unlock_saved(fn):
    with _locks_mutex:
        for lock, _, _ in fn._saved_locks:
            lock.count -= 1
            if lock.count == 0:
                del _locks[id(lock.owner)]
                _set_writeable(lock, True)
        fn._saved_locks = ()


def _note_view_of_locked(arr):
    """An op's output that is a view of locked memory was born read-only (NumPy copies the flag
    into new views); make it writable again when that memory is unlocked."""
    if arr.base is None:
        return
    lock = _locks.get(id(_owner(arr, _array_types())))
    if lock is not None:
        lock.dependents.append(weakref.ref(arr))


def is_saved(arr):
    """Whether a live op saved (and so locked) the memory of ``arr``."""
    return bool(_locks) and id(_owner(arr, _array_types())) in _locks


class modifying:
    """``with modifying(*arrays): ...`` around the engine's own in-place writes (``Tensor.copy_``,
    ``zero_``, ..., clip_grad_norm_): if a live op saved the memory, it is made writable for the
    write and its version goes up, so that op's backward raises instead of using the new values
    (PyTorch's rule). With no graph holding the memory it costs a dict lookup."""
    __slots__ = ("arrays", "held", "relock")

    def __init__(self, *arrays):
        self.arrays = arrays
        types = _array_types()
        self.held = [lock for lock in (_locks.get(id(_owner(a, types))) for a in arrays) if lock is not None] \
            if _locks else ()

    def __enter__(self):
        if self.held:
            # the written arrays themselves, if read-only only because they view locked memory
            self.relock = [a for a in self.arrays if isinstance(a, np.ndarray) and not a.flags.writeable]
            for lock in self.held:
                lock.version += 1
                _set_writeable(lock, True, self.relock)
        return self

    def __exit__(self, *exc):
        for lock in self.held:
            _set_writeable(lock, False, self.relock)


def _describe(what):
    kind, where, shape, dtype = what[:4]
    if kind == "input":
        leaf = "a leaf tensor" if what[4] else "a tensor"
        return f"input {where} ({leaf} of shape {tuple(shape)}, {dtype})"
    if kind == "output":
        return f"its output (shape {tuple(shape)}, {dtype})"
    return f"the array it saved as {where!r} (shape {tuple(shape)}, {dtype})"
