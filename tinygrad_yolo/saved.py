"""What keeps an array an op saved from changing before the op's backward reads it.

Whatever ``forward`` saved (every array attribute of the op) must still hold the same values
when ``backward`` reads them, or the gradient is silently wrong. So while a recorded op is
alive, the memory of each array it saved is made read-only (NumPy's ``flags.writeable``, as
MyGrad does): the array that owns the memory, the saved array, and the ``.data`` of any input or
output tensor that shares it. A write such as ``w.data[...] = 100`` -- or to the NumPy array
``w`` was made from -- then fails at once ("assignment destination is read-only"). The flags are
restored when the op is released (after its backward) or garbage-collected; writes that were
allowed before are allowed again.

In-place writes through the engine's API (``Tensor.copy_``, ``zero_``, ...,
``nn.utils.clip_grad_norm_``) go through ``modifying()``: they proceed and bump the memory's
version, and the backward of every op that saved it raises an error naming the op and the input,
as PyTorch's version counters do. CuPy arrays have no writeable flag, so on the GPU only those
versioned writes are caught; a raw write to a CuPy ``.data`` is not.

The engine calls three functions: ``after_forward`` from Function.apply, ``check_unchanged``
before an op's backward, ``release`` when the op is freed.
"""
import threading
import weakref

import numpy as np


class _Lock:
    """One block of memory that live ops saved: its owning array, how many ops hold it, its
    version (bumped by every write through modifying()), and the arrays made read-only with it."""
    __slots__ = ("owner", "count", "version", "views", "dependents")

    def __init__(self, owner):
        self.owner, self.count, self.version = owner, 0, 0
        self.views = []       # arrays over this memory that we made read-only (restored with it)
        self.dependents = []  # weak references to op outputs born read-only views of it


_locks = {}  # id(owning array) -> _Lock, while some live op holds it
_locks_mutex = threading.Lock()
_NUMPY_ONLY = (np.ndarray,)


def _array_types():
    """(numpy.ndarray,), plus cupy.ndarray once CuPy is loaded (only ever by backend)."""
    from . import backend
    cupy = backend.loaded_cupy()
    return _NUMPY_ONLY if cupy is None else (np.ndarray, cupy.ndarray)


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


def after_forward(fn, tensors, result, recorded):
    """Called by Function.apply after every forward: a result that is a view of locked memory
    becomes writable again with it, and a recorded op's saved memory is locked."""
    if _locks and isinstance(result.data, np.ndarray) and not result.data.flags.writeable:
        _note_view_of_locked(result.data)
    if recorded:
        _lock_saved(fn, tensors, result)


def _blocks_saved_by(fn, tensors, result, types):
    """{id(owner): [owner, arrays over it, what it is]} for the memory ``fn`` saved: the saved
    arrays, and the ``.data`` of the inputs and the output that share it."""
    blocks = {}
    for name, arr in _saved_arrays(fn, types):
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
    return blocks


def _lock_saved(fn, tensors, result):
    """Lock the memory of every array ``fn`` saved (see _blocks_saved_by)."""
    blocks = _blocks_saved_by(fn, tensors, result, _array_types())
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
        fn.saved_locks = held


def _set_writeable(lock, flag, extra=()):
    """Switch the memory of ``lock`` writable (the owner first: a view can only follow it) or
    back."""
    if not isinstance(lock.owner, np.ndarray):
        return  # CuPy: no flags
    dependents = [a for a in (r() for r in lock.dependents) if a is not None]
    for a in [lock.owner] + lock.views + dependents + list(extra):
        try:
            a.flags.writeable = flag
        except ValueError:  # a view that can never be writable (a broadcast), or not by us
            pass


def release(fn):
    """Unlock what ``fn`` saved (after its backward, or when it is garbage-collected)."""
    if not fn.__dict__.get("saved_locks"):
        return
    with _locks_mutex:
        for lock, _, _ in fn.saved_locks:
            lock.count -= 1
            if lock.count == 0:
                del _locks[id(lock.owner)]
                _set_writeable(lock, True)
        fn.saved_locks = ()


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


def check_unchanged(fn):
    """Raise if memory ``fn`` saved was written in place since its forward (see modifying)."""
    for lock, version, what in fn.saved_locks:
        if lock.version != version:
            raise RuntimeError(
                f"{fn.name}: {_describe(what)}, which it saved for backward, was modified in "
                f"place after the forward (version {lock.version}, the forward saw {version}), "
                "so the gradient would use the new values. Run the forward again after the "
                "change, or change a copy.")


class modifying:
    """``with modifying(*arrays): ...`` around the engine's own in-place writes (``Tensor.copy_``,
    ``zero_``, ..., clip_grad_norm_): if a live op saved the memory, it is made writable for the
    write and its version goes up, so that op's backward raises instead of using the new values
    (PyTorch's rule). With no graph holding the memory it costs a dict lookup."""
    __slots__ = ("arrays", "held", "relock")

    def __init__(self, *arrays):
        self.arrays = arrays
        types = _array_types()
        self.held = [lock for lock in (_locks.get(id(_owner(a, types))) for a in arrays)
                     if lock is not None] if _locks else ()

    def __enter__(self):
        if self.held:
            # the written arrays themselves, if read-only only because they view locked memory
            self.relock = [a for a in self.arrays
                           if isinstance(a, np.ndarray) and not a.flags.writeable]
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
