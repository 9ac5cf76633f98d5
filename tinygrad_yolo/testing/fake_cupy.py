"""A counting stand-in for the CuPy module, NumPy underneath (CPU only, no GPU needed).

Installed in place of CuPy (``with installed() as cp:``), it lets the CUDA code path of the
engine run on a machine without a GPU, and counts what that path would ask of the device:

    calls     device work by category: elementwise (ufuncs, fills, custom ElementwiseKernels,
              index gathers and scatters), reduction, gemm, raw (RawModule kernels), copy
              (ascontiguousarray / astype / concatenate / hidden copies), transfer (host->device)
    syncs     host synchronisations: .item(), .get(), asnumpy, float()/int()/bool()/format()
              of a device array, boolean-mask indexing (CuPy must learn the result's size),
              Device().synchronize(), Event.synchronize()
    allocs    the bytes of every fresh device array (live and peak bytes too)

What it models of CuPy 14 beyond one call per API call (so the counts match what a profiler sees
on a GPU, see _routines_linalg.pyx): ``matmul`` first makes each operand C-contiguous
(``a = ascontiguousarray(a)``: a transposed view is copied) (a hidden copy, counted under copy with its
bytes), and a batched matmul broadcasting an operand calls sgemmBatched with pointer arrays
built by three small kernels (_mat_ptrs of a, b and c, counted as elementwise). Everything else is one call per API call: a fused CuPy ufunc over several
operands is one kernel, as on the device.

Raw kernels (cp.RawModule) run through NumPy emulations registered by kernel name
(``RAW_KERNELS``); ElementwiseKernel / ReductionKernel bodies simple enough to be Python
expressions ("y = x * s + b") are evaluated with NumPy. cp.cuda.cublas offers the strided-batched
GEMMs, emulated on the raw memory behind the pointers with cuBLAS's column-major semantics.

It mirrors CuPy where the engine relies on it: a NumPy array mixed into a device operation raises
TypeError, implicit conversion to NumPy (``np.asarray(device_array)``) raises, reductions return
0-d device arrays, not host scalars.
"""
import collections
import contextlib
import functools
import re
import sys
import types
import weakref

import numpy as np


# ---- the counter -------------------------------------------------------------------------------
class Counter:
    def __init__(self):
        self.reset()

    def reset(self):
        self.calls = collections.Counter()      # category -> calls
        self.names = collections.Counter()      # (category, name) -> calls
        self.syncs = collections.Counter()      # kind -> host synchronisations
        self.allocs = []                        # bytes of each fresh array, in order
        self.live = getattr(self, "live", 0)
        self.buffers = getattr(self, "buffers", {})  # address -> bytes of every live allocation
        self.peak = self.live
        self.copy_bytes = 0

    def call(self, category, name, n=1):
        self.calls[category] += n
        self.names[(category, name)] += n

    def sync(self, kind):
        self.syncs[kind] += 1

    def alloc(self, a):
        nbytes = int(a.nbytes)
        self.allocs.append(nbytes)
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        address = a.ctypes.data
        self.buffers[address] = nbytes
        weakref.finalize(a, self._free, address, nbytes)

    def _free(self, address, nbytes):
        self.live -= nbytes
        self.buffers.pop(address, None)

    def check_extent(self, what, ptr, nbytes):
        """Raise unless [ptr, ptr + nbytes) lies inside one live device allocation (a raw-pointer
        call reading past its array would read garbage on a GPU, and crash here)."""
        for address, size in self.buffers.items():
            if address <= ptr and ptr + nbytes <= address + size:
                return
        raise ValueError(f"{what}: {nbytes} bytes from address {ptr:#x} are not inside one device allocation")

    def total_calls(self):
        return sum(v for k, v in self.calls.items() if k != "transfer")

    def summary(self):
        return {"calls": self.total_calls(), "by_category": dict(sorted(self.calls.items())),
                "syncs": sum(self.syncs.values()), "syncs_by_kind": dict(sorted(self.syncs.items())),
                "allocations": len(self.allocs), "allocated_bytes": sum(self.allocs),
                "distinct_sizes": len(set(self.allocs)), "peak_live_bytes": self.peak,
                "hidden_copy_bytes": self.copy_bytes}


counter = Counter()


# ---- arrays ------------------------------------------------------------------------------------
def _unwrap(v, allow_host=False):
    if isinstance(v, ndarray):
        return v._a
    if isinstance(v, np.ndarray) and not allow_host:
        raise TypeError(f"Unsupported type {type(v)}: a NumPy array mixed into a device operation "
                        f"(CuPy raises here too)")
    if isinstance(v, (list, tuple)):
        return type(v)(_unwrap(x, allow_host) for x in v)
    if isinstance(v, dict):
        return {k: _unwrap(x, allow_host) for k, x in v.items()}
    return v


def _inputs(args):
    out = []
    for v in args:
        if isinstance(v, ndarray):
            out.append(v._a)
        elif isinstance(v, (list, tuple)):
            out.extend(_inputs(v))
    return out


def _wrap(v, inputs=(), out=None, host=False):
    """Wrap NumPy results as device arrays; record fresh ones as allocations."""
    if isinstance(v, np.ndarray):
        if out is not None:
            return out
        if not any(np.may_share_memory(v, i) for i in inputs if i.size):
            base = v if v.base is None else v.base
            if isinstance(base, np.ndarray) and v.size:
                counter.alloc(base)
        return ndarray._from(v)
    if isinstance(v, np.generic) and not host:
        return _wrap(np.asarray(v))
    if isinstance(v, tuple):
        return tuple(_wrap(x, inputs) for x in v)
    if isinstance(v, list):
        return [_wrap(x, inputs) for x in v]
    return v


def _op(category, name, fn, args, kwargs, n=1):
    out = kwargs.get("out")
    inputs = _inputs(args)
    result = fn(*_unwrap(args), **_unwrap(kwargs))
    counter.call(category, name, n)
    return _wrap(result, inputs, out if isinstance(out, ndarray) else None)


def _binary(name, reflected=False, inplace=False):
    np_fn = getattr(np, name)

    def method(self, other):
        if isinstance(other, np.ndarray):
            raise TypeError(f"Unsupported type {type(other)}: a NumPy array mixed into a device operation")
        if inplace:
            np_fn(self._a, _unwrap(other), out=self._a)
            counter.call("elementwise", name)
            return self
        args = (other, self) if reflected else (self, other)
        return _op("elementwise", name, np_fn, args, {})
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


_REDUCE_METHODS = {"sum", "mean", "max", "min", "argmax", "argmin", "any", "all", "prod", "var", "std",
                   "cumsum", "nonzero"}
_VIEW_METHODS = {"reshape", "transpose", "swapaxes", "view", "squeeze", "ravel", "diagonal"}
_COPY_METHODS = {"copy", "flatten"}
_ELEMENTWISE_METHODS = {"clip", "fill", "round", "conj", "repeat", "take", "put"}


class ndarray:
    """A device array: a NumPy array behind CuPy's interface, every operation counted."""
    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None   # NumPy defers to our reflected operators, which refuse host arrays
    __array_priority__ = 1000

    @classmethod
    def _from(cls, a):
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
    T = property(lambda self: ndarray._from(self._a.T))

    @property
    def base(self):
        return None if self._a.base is None else ndarray._from(self._a.base)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield self[i]

    def __repr__(self):
        return f"fake_cupy.ndarray(shape={self.shape}, dtype={self.dtype})"

    # host synchronisation
    def item(self):
        counter.sync("item")
        return self._a.item()

    def get(self, stream=None, out=None):
        counter.sync("get")
        return self._a.copy()

    def tolist(self):
        counter.sync("tolist")
        return self._a.tolist()

    def __float__(self):
        counter.sync("float")
        return float(self._a)

    def __int__(self):
        counter.sync("int")
        return int(self._a)

    def __index__(self):
        counter.sync("index")
        return self._a.__index__()

    def __bool__(self):
        counter.sync("bool")
        return bool(self._a)

    def __format__(self, spec):
        counter.sync("format")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
                        "construct a NumPy array explicitly.")

    # indexing
    def __getitem__(self, key):
        k = _unwrap(key)
        keys = k if isinstance(k, tuple) else (k,)
        if any(isinstance(x, np.ndarray) and x.dtype == bool for x in keys):
            counter.sync("boolean_index")  # CuPy counts the True values on the host first
            return _op("elementwise", "boolean_index", lambda a: a[k], (self,), {}, n=3)
        if any(isinstance(x, (np.ndarray, list)) for x in keys):
            return _op("elementwise", "take", lambda a: a[k], (self,), {})
        r = self._a[k]
        if not isinstance(r, np.ndarray):  # a single element: CuPy gives a 0-d device array
            r = self._a[keys + (Ellipsis,)]
        return ndarray._from(r)

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray):
            raise TypeError(f"Unsupported type {type(value)}: assign a device array, not a NumPy one")
        self._a[_unwrap(key)] = _unwrap(value)
        counter.call("elementwise", "setitem")

    # methods
    def astype(self, dtype, copy=True, order="K"):
        if not copy and np.dtype(dtype) == self._a.dtype:
            return self
        return _op("copy", "astype", lambda a: a.astype(dtype, order=order), (self,), {})

    def __getattr__(self, name):
        fn = getattr(self._a, name)  # AttributeError for what NumPy lacks too
        if not callable(fn):
            return fn
        category = ("reduction" if name in _REDUCE_METHODS else "view" if name in _VIEW_METHODS else
                    "copy" if name in _COPY_METHODS else "elementwise" if name in _ELEMENTWISE_METHODS
                    else "other")

        def method(*args, **kwargs):
            inputs = [self._a] + _inputs(args)
            result = fn(*_unwrap(args), **_unwrap(kwargs))
            if category == "view":
                if isinstance(result, np.ndarray) and result.size and not np.may_share_memory(result, self._a):
                    counter.call("copy", name)  # a reshape that had to copy
                return _wrap(result, inputs)
            if name == "fill":
                counter.call("elementwise", name)
                return None
            counter.call(category, name)
            return _wrap(result, inputs, self if kwargs.get("out") is self else None)
        return method

    # arithmetic (CuPy: one elementwise kernel each)
    __matmul__ = lambda self, other: matmul(self, other)
    __rmatmul__ = lambda self, other: matmul(other, self)

    def __neg__(self):
        return _op("elementwise", "negative", np.negative, (self,), {})

    def __pos__(self):
        return self

    def __abs__(self):
        return _op("elementwise", "absolute", np.absolute, (self,), {})

    def __invert__(self):
        return _op("elementwise", "invert", np.invert, (self,), {})


for _name, _ufunc in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                      ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"),
                      ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
    setattr(ndarray, f"__r{_name}__", _binary(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _binary(_ufunc, inplace=True))
for _name, _ufunc in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                      ("eq", "equal"), ("ne", "not_equal")]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc))
ndarray.__hash__ = None
ndarray.__module__ = "cupy"  # backend.is_cuda_array() tells device arrays by their class's module


# ---- module-level functions --------------------------------------------------------------------
class _Ufunc:
    def __init__(self, name):
        self._u, self.__name__ = getattr(np, name), name

    def __call__(self, *args, **kwargs):
        return _op("elementwise", self.__name__, self._u, args, kwargs)

    def at(self, a, index, values=None):
        args = (index,) if values is None else (index, values)
        self._u.at(a._a, *_unwrap(args))
        counter.call("elementwise", f"{self.__name__}.at")

    def reduce(self, *args, **kwargs):
        return _op("reduction", f"{self.__name__}.reduce", self._u.reduce, args, kwargs)

    def outer(self, *args, **kwargs):
        return _op("elementwise", f"{self.__name__}.outer", self._u.outer, args, kwargs)


_ALLOC = {"empty", "empty_like"}
_FILL = {"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace", "eye",
         "identity"}
_REDUCTIONS = {"sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "any", "all", "prod",
               "var", "std", "count_nonzero", "cumsum", "nansum", "nanmax", "nanmin", "average"}
_GEMM = {"dot", "vdot", "tensordot", "inner", "einsum"}
_COPIES = {"concatenate", "stack", "vstack", "hstack", "copy", "pad", "tile", "repeat"}
_ELEMENTWISE = {"where", "clip", "isnan", "isinf", "isfinite", "round", "around", "outer", "cross",
                "nan_to_num", "diff"}
_VIEWS = {"reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "moveaxis", "swapaxes",
          "flip", "fliplr", "flipud", "ravel", "atleast_1d", "atleast_2d", "broadcast_arrays", "split",
          "array_split"}
_HOST = {"result_type", "may_share_memory", "shares_memory", "shape", "ndim", "size", "iinfo", "finfo",
         "dtype", "can_cast", "promote_types", "isscalar", "issubdtype"}


def _function(name):
    fn = getattr(np, name)
    if name in _HOST:
        return fn
    if name in _ALLOC:
        def alloc(*args, **kwargs):
            r = fn(*_unwrap(args), **_unwrap(kwargs))
            counter.alloc(r)
            return ndarray._from(r)
        return alloc
    category = ("elementwise" if name in _FILL or name in _ELEMENTWISE else "reduction" if name in _REDUCTIONS
                else "gemm" if name in _GEMM else "copy" if name in _COPIES else "view" if name in _VIEWS
                else "other")

    def call(*args, **kwargs):
        if category == "view":
            inputs = _inputs(args)
            r = fn(*_unwrap(args), **_unwrap(kwargs))
            if isinstance(r, np.ndarray) and r.size and not any(np.may_share_memory(r, i) for i in inputs):
                counter.call("copy", name)
            return _wrap(r, inputs)
        return _op(category, name, fn, args, kwargs)
    call.__name__ = name
    return call


def matmul(a, b, out=None, **kwargs):
    """One GEMM, plus CuPy's hidden work: copies of batched operands that are not contiguous in
    their last two axes, and pointer arrays where a batched matmul broadcasts an operand."""
    A, B = _unwrap(a), _unwrap(b)
    if isinstance(A, np.ndarray) and not isinstance(a, ndarray) or isinstance(B, np.ndarray) and not isinstance(b, ndarray):
        raise TypeError("matmul: a NumPy array mixed into a device operation")
    for op in (A, B):
        if op.ndim >= 2 and not op.flags.c_contiguous:  # CuPy: a = ascontiguousarray(a, dtype)
            counter.call("copy", "matmul_hidden_copy")
            counter.copy_bytes += op.nbytes
            counter.allocs.append(int(op.nbytes))
            counter.peak = max(counter.peak, counter.live + op.nbytes)  # alive during the GEMM
    if (A.ndim > 2 or B.ndim > 2) and A.shape[:-2] != B.shape[:-2]:
        counter.call("elementwise", "matmul_pointer_arrays", 3)  # _mat_ptrs of a, b and c
    return _op("gemm", "matmul", np.matmul, (a, b), {} if out is None else {"out": out})


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return a.astype(dtype)
    r = np.array(a, dtype=dtype, copy=True)
    counter.call("transfer", "host_to_device")
    counter.alloc(r)
    return ndarray._from(r)


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        if not copy and (dtype is None or np.dtype(dtype) == a.dtype):
            return a
        return _op("copy", "array", lambda x: np.array(x, dtype=dtype, copy=True, ndmin=ndmin), (a,), {})
    return asarray(np.array(a, dtype=dtype, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError("ascontiguousarray: a NumPy array mixed into a device operation")
    if a._a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return _op("copy", "ascontiguousarray", lambda x: np.ascontiguousarray(x, dtype=dtype), (a,), {})


def asnumpy(a, stream=None, out=None):
    if isinstance(a, ndarray):
        counter.sync("asnumpy")
        return a._a.copy()
    return np.asarray(a)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


# ---- custom kernels ----------------------------------------------------------------------------
RAW_KERNELS = {}   # kernel name (without the template arguments) -> emulation(*args) on NumPy arrays


def raw_kernel(name):
    """Register a NumPy emulation for the RawModule kernel ``name``; it gets the launch's arguments
    (device arrays as NumPy arrays, scalars as given; fused.NULL, a zero, for a null pointer) and
    writes the outputs in place. An emulation with ``with_launch = True`` gets (grid, block) first."""
    def register(fn):
        RAW_KERNELS[name] = fn
        return fn
    return register


class RawKernel:
    def __init__(self, name):
        self.name = name
        self.base = name.split("<")[0]

    def __call__(self, grid, block, args, shared_mem=0, **kwargs):
        for v in args:
            if isinstance(v, np.ndarray):
                raise TypeError(f"{self.name}: a NumPy array passed to a device kernel")
        emulate = RAW_KERNELS.get(self.base)
        if emulate is None:
            _emulations()
            emulate = RAW_KERNELS.get(self.base)
        if emulate is None:
            raise NotImplementedError(f"fake_cupy: no NumPy emulation registered for kernel {self.base!r}")
        if getattr(emulate, "with_launch", False):  # e.g. the host-compiled kernel itself (tests)
            emulate(grid, block, *_unwrap(list(args)))
        else:
            emulate(*_unwrap(list(args)))
        counter.call("raw", self.base)


class RawModule:
    def __init__(self, code=None, path=None, options=(), name_expressions=None, **kwargs):
        self.code, self.options, self.name_expressions = code, options, name_expressions

    def get_function(self, name):
        return RawKernel(name)


def _params(spec):
    """'T x, raw T w, float32 s' -> ['x', 'w', 's']"""
    return [p.split()[-1] for p in spec.split(",") if p.strip()]


def _python(expr):
    expr = expr.strip().rstrip(";")
    return re.sub(r"\(\s*(?:float|double|T)\s*\)", "", expr)


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        self.ins, self.outs, self.operation, self.name = _params(in_params), _params(out_params), operation, name

    def __call__(self, *args, **kwargs):
        arrays = [_unwrap(a) for a in args[:len(self.ins)]]
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"{self.name}: a NumPy array passed to a device kernel")
        env = dict(zip(self.ins, arrays))
        shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
        dtype = next(a.dtype for a in arrays if isinstance(a, np.ndarray))
        exec(compile("\n".join(_python(s) for s in self.operation.split(";") if s.strip()), self.name, "exec"),
             {"np": np}, env)
        outs = []
        for i, o in enumerate(self.outs):
            given = args[len(self.ins) + i] if len(args) > len(self.ins) + i else None
            value = np.broadcast_to(np.asarray(env[o], dtype=dtype), shape)
            if given is not None:
                given._a[...] = value
                outs.append(given)
            else:
                r = np.array(value, dtype=dtype)
                counter.alloc(r)
                outs.append(ndarray._from(r))
        counter.call("elementwise", self.name)
        return outs[0] if len(outs) == 1 else tuple(outs)


class ReductionKernel:
    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name="reduce",
                 **kwargs):
        if reduce_expr.replace(" ", "") not in ("a+b",):
            raise NotImplementedError(f"fake_cupy: ReductionKernel {name}: only the sum 'a + b' is emulated")
        self.ins, self.map_expr, self.name = _params(in_params), map_expr, name

    def __call__(self, *args, axis=None, keepdims=False, **kwargs):
        arrays = [_unwrap(a) for a in args[:len(self.ins)]]
        mapped = eval(_python(self.map_expr), {"np": np}, dict(zip(self.ins, arrays)))
        r = np.asarray(mapped.sum(axis=axis, keepdims=keepdims), dtype=arrays[0].dtype)
        counter.alloc(r)
        counter.call("reduction", self.name)
        return ndarray._from(r)


# ---- cupy.cuda ---------------------------------------------------------------------------------
class _Event:
    """cupy.cuda.Event: records 'when' as the count of device calls so far (no clock on a fake
    device); elapsed_time gives 0.001 ms per call between two events."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.mark = None

    def record(self, stream=None):
        self.mark = counter.total_calls()

    def synchronize(self):
        counter.sync("event_synchronize")

    @property
    def done(self):
        return True


def _get_elapsed_time(start, end):
    return 1e-3 * (end.mark - start.mark)


class _Device:
    def __init__(self, device=None):
        self.id = 0

    def synchronize(self):
        counter.sync("device_synchronize")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _MemoryPool:
    def used_bytes(self):
        return counter.live

    def total_bytes(self):
        return counter.peak

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def _cublas_module():
    from . import fake_cublas
    return fake_cublas


cuda = types.SimpleNamespace(
    Device=_Device, Event=_Event, get_elapsed_time=_get_elapsed_time,
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, deviceSynchronize=lambda: counter.sync("device_synchronize")),
    Stream=types.SimpleNamespace(null=types.SimpleNamespace(synchronize=lambda: counter.sync("stream_synchronize"),
                                                            ptr=0)),
    get_current_stream=lambda: cuda.Stream.null,
    device=types.SimpleNamespace(get_cublas_handle=lambda: 0),
)


class _Random:
    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name):
        fn = getattr(np.random, name)

        def call(*args, **kwargs):
            r = fn(*_unwrap(args), **_unwrap(kwargs))
            counter.call("elementwise", f"random.{name}")
            r = np.asarray(r)
            counter.alloc(r)
            return ndarray._from(r)
        return call


random = _Random()
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    as_strided=lambda x, shape=None, strides=None, **k: ndarray._from(
        np.lib.stride_tricks.as_strided(x._a, shape, strides, **k))))


def __getattr__(name):
    """Everything else NumPy has: ufuncs, functions (counted by category), constants and types."""
    if name.startswith("__"):
        raise AttributeError(name)
    if name == "cublas":
        raise AttributeError(name)
    attr = getattr(np, name)
    if isinstance(attr, np.ufunc):
        value = _Ufunc(name)
    elif isinstance(attr, type) or not callable(attr):
        value = attr
    else:
        value = _function(name)
    globals()[name] = value
    return value


@functools.lru_cache(maxsize=None)
def _emulations():
    """Register the emulations of the repository's kernels (imported late: they use ops/)."""
    from . import kernel_emulations  # noqa: F401


# ---- installing it in place of CuPy ------------------------------------------------------------
@contextlib.contextmanager
def installed():
    """Make the engine's device='cuda' use this module; restore the real state afterwards.

    Clears the caches of compiled kernels (kernels/__init__.py) on the way in and out, so that no
    fake kernel object outlives the context and no real one leaks into it.
    """
    from .. import backend
    module = sys.modules[__name__]
    saved = backend._cupy, backend._cupy_error
    cuda.cublas = _cublas_module()
    _clear_kernel_caches()
    backend._cupy, backend._cupy_error = module, None
    try:
        yield module
    finally:
        backend._cupy, backend._cupy_error = saved
        _clear_kernel_caches()


def _clear_kernel_caches():
    from .. import backend
    for mod in [backend.cuda_kernels()] + [m for n, m in list(sys.modules.items())
                                            if n.startswith("tinygrad_yolo.") and m is not None]:
        for value in list(vars(mod).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", "").startswith(
                    ("tinygrad_yolo", "kernels")):
                value.cache_clear()
