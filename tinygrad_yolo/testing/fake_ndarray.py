"""The device array of fake_cupy: a NumPy array behind CuPy's ndarray interface, every operation
counted (counting.counter), and the helpers that wrap NumPy results as device arrays.

It mirrors CuPy where the engine relies on it: a NumPy array mixed into a device operation raises
TypeError, implicit conversion to NumPy (``np.asarray(device_array)``) raises, reductions return
0-d device arrays, not host scalars. ``matmul`` models what CuPy 14 does beyond one GEMM (see its
_routines_linalg.pyx): it first makes each operand C-contiguous (a transposed view is copied: a
hidden copy, counted under copy with its bytes), and a batched product broadcasting an operand
builds pointer arrays with three small kernels (_mat_ptrs of a, b and c, counted as elementwise).
"""
import numpy as np

from .counting import counter


def unwrap(v, allow_host=False):
    """The NumPy array behind a device array (inside lists, tuples and dicts too); a host NumPy
    array is refused unless ``allow_host``."""
    if isinstance(v, ndarray):
        return v._a
    if isinstance(v, np.ndarray) and not allow_host:
        raise TypeError(f"Unsupported type {type(v)}: a NumPy array mixed into a device operation "
                        f"(CuPy raises here too)")
    if isinstance(v, (list, tuple)):
        return type(v)(unwrap(x, allow_host) for x in v)
    if isinstance(v, dict):
        return {k: unwrap(x, allow_host) for k, x in v.items()}
    return v


def host_inputs(args):
    """The NumPy arrays behind the device arrays among ``args`` (what a result may share)."""
    out = []
    for v in args:
        if isinstance(v, ndarray):
            out.append(v._a)
        elif isinstance(v, (list, tuple)):
            out.extend(host_inputs(v))
    return out


def wrap(v, inputs=(), out=None, host=False):
    """Wrap NumPy results as device arrays; record fresh ones as allocations."""
    if isinstance(v, np.ndarray):
        if out is not None:
            return out
        if not any(np.may_share_memory(v, i) for i in inputs if i.size):
            base = v if v.base is None else v.base
            if isinstance(base, np.ndarray) and v.size:
                counter.alloc(base)
        return ndarray.view_of(v)
    if isinstance(v, np.generic) and not host:
        return wrap(np.asarray(v))
    if isinstance(v, tuple):
        return tuple(wrap(x, inputs) for x in v)
    if isinstance(v, list):
        return [wrap(x, inputs) for x in v]
    return v


def counted(category, name, fn, args, kwargs, n=1):
    """fn run on the NumPy arrays behind ``args``, counted as ``n`` calls of ``category``."""
    out = kwargs.get("out")
    inputs = host_inputs(args)
    result = fn(*unwrap(args), **unwrap(kwargs))
    counter.call(category, name, n)
    return wrap(result, inputs, out if isinstance(out, ndarray) else None)


def _binary(name, reflected=False, inplace=False):
    np_fn = getattr(np, name)

    def method(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a NumPy array mixed into a device "
                            "operation")
        if inplace:
            np_fn(self._a, unwrap(other), out=self._a)
            counter.call("elementwise", name)
            return self
        args = (other, self) if reflected else (self, other)
        return counted("elementwise", name, np_fn, args, {})
    return method


def _syncing(kind, read):
    """A method that counts a host synchronisation of ``kind``, then returns read(host array)."""
    def method(self, *args, **kwargs):
        counter.sync(kind)
        return read(self._a, *args, **kwargs)
    method.__name__ = kind
    return method


class _Flags:
    def __init__(self, a):
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


class _MemoryPointer:
    def __init__(self, a):
        self.ptr = a.ctypes.data


_REDUCE_METHODS = {"sum", "mean", "max", "min", "argmax", "argmin", "any", "all", "prod", "var",
                   "std", "cumsum", "nonzero"}
_VIEW_METHODS = {"reshape", "transpose", "swapaxes", "view", "squeeze", "ravel", "diagonal"}
_COPY_METHODS = {"copy", "flatten"}
_ELEMENTWISE_METHODS = {"clip", "fill", "round", "conj", "repeat", "take", "put"}
_METHOD_CATEGORIES = [(_REDUCE_METHODS, "reduction"), (_VIEW_METHODS, "view"),
                      (_COPY_METHODS, "copy"), (_ELEMENTWISE_METHODS, "elementwise")]


class ndarray:
    """A device array: a NumPy array behind CuPy's interface, every operation counted."""
    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None   # NumPy defers to our reflected operators, which refuse host arrays
    __array_priority__ = 1000

    @classmethod
    def view_of(cls, a):
        obj = object.__new__(cls)
        obj._a = a
        return obj

    def __init__(self, shape, dtype=float):
        self._a = np.empty(shape, dtype)
        counter.alloc(self._a)

    # metadata: host values, no sync
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _MemoryPointer(self._a))
    T = property(lambda self: ndarray.view_of(self._a.T))

    @property
    def base(self):
        return None if self._a.base is None else ndarray.view_of(self._a.base)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield self[i]

    def __repr__(self):
        return f"fake_cupy.ndarray(shape={self.shape}, dtype={self.dtype})"

    # host synchronisation: each of these waits for the device, then reads the value
    item = _syncing("item", lambda a: a.item())
    get = _syncing("get", lambda a, stream=None, out=None: a.copy())
    tolist = _syncing("tolist", lambda a: a.tolist())
    __float__ = _syncing("float", float)
    __int__ = _syncing("int", int)
    __index__ = _syncing("index", lambda a: a.__index__())
    __bool__ = _syncing("bool", bool)

    def __format__(self, spec):
        counter.sync("format")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` "
                        "to construct a NumPy array explicitly.")

    # indexing
    def __getitem__(self, key):
        k = unwrap(key)
        keys = k if isinstance(k, tuple) else (k,)
        if any(isinstance(x, np.ndarray) and x.dtype == bool for x in keys):
            counter.sync("boolean_index")  # CuPy counts the True values on the host first
            return counted("elementwise", "boolean_index", lambda a: a[k], (self,), {}, n=3)
        if any(isinstance(x, (np.ndarray, list)) for x in keys):
            return counted("elementwise", "take", lambda a: a[k], (self,), {})
        r = self._a[k]
        if not isinstance(r, np.ndarray):  # a single element: CuPy gives a 0-d device array
            r = self._a[keys + (Ellipsis,)]
        return ndarray.view_of(r)

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray):
            raise TypeError(f"Unsupported type {type(value)}: assign a device array, not a NumPy "
                            "one")
        self._a[unwrap(key)] = unwrap(value)
        counter.call("elementwise", "setitem")

    # methods
    def astype(self, dtype, copy=True, order="K"):
        if not copy and np.dtype(dtype) == self._a.dtype:
            return self
        return counted("copy", "astype", lambda a: a.astype(dtype, order=order), (self,), {})

    def __getattr__(self, name):
        fn = getattr(self._a, name)  # AttributeError for what NumPy lacks too
        if not callable(fn):
            return fn
        category = next((c for names, c in _METHOD_CATEGORIES if name in names), "other")

        def method(*args, **kwargs):
            inputs = [self._a] + host_inputs(args)
            result = fn(*unwrap(args), **unwrap(kwargs))
            if category == "view":
                fresh = isinstance(result, np.ndarray) and result.size
                if fresh and not np.may_share_memory(result, self._a):
                    counter.call("copy", name)  # a reshape that had to copy
                return wrap(result, inputs)
            if name == "fill":
                counter.call("elementwise", name)
                return None
            counter.call(category, name)
            return wrap(result, inputs, self if kwargs.get("out") is self else None)
        return method

    # arithmetic (CuPy: one elementwise kernel each)
    __matmul__ = lambda self, other: matmul(self, other)
    __rmatmul__ = lambda self, other: matmul(other, self)

    def __neg__(self):
        return counted("elementwise", "negative", np.negative, (self,), {})

    def __pos__(self):
        return self

    def __abs__(self):
        return counted("elementwise", "absolute", np.absolute, (self,), {})

    def __invert__(self):
        return counted("elementwise", "invert", np.invert, (self,), {})


for _name, _ufunc in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                      ("truediv", "true_divide"), ("floordiv", "floor_divide"),
                      ("mod", "remainder"), ("pow", "power"), ("and", "bitwise_and"),
                      ("or", "bitwise_or"), ("xor", "bitwise_xor")]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_name}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_ufunc, inplace=True))
for _name, _ufunc in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                      ("ge", "greater_equal"), ("eq", "equal"), ("ne", "not_equal")]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
ndarray.__hash__ = None
ndarray.__module__ = "cupy"  # backend.is_cuda_array() tells device arrays by their class's module


def matmul(a, b, out=None, **kwargs):
    """One GEMM, plus CuPy's hidden work: copies of batched operands that are not contiguous in
    their last two axes, and pointer arrays where a batched matmul broadcasts an operand."""
    A, B = unwrap(a), unwrap(b)
    if any(isinstance(v, np.ndarray) and not isinstance(x, ndarray) for v, x in ((A, a), (B, b))):
        raise TypeError("matmul: a NumPy array mixed into a device operation")
    for op in (A, B):
        if op.ndim >= 2 and not op.flags.c_contiguous:  # CuPy: a = ascontiguousarray(a, dtype)
            counter.hidden_copy(op.nbytes)  # alive during the GEMM
    if (A.ndim > 2 or B.ndim > 2) and A.shape[:-2] != B.shape[:-2]:
        counter.call("elementwise", "matmul_pointer_arrays", 3)  # _mat_ptrs of a, b and c
    return counted("gemm", "matmul", np.matmul, (a, b), {} if out is None else {"out": out})
