"""A counting stand-in for the CuPy module, NumPy underneath (CPU only, no GPU needed).

Installed in place of CuPy (``with installed() as cp:``), it lets the CUDA code path of the
engine run on a machine without a GPU, and counts what that path would ask of the device
(counting.py says what is counted). One CuPy call is one counted call -- a fused CuPy ufunc over
several operands is one kernel, as on the device -- except where CuPy 14 does hidden work, which
is counted too (fake_ndarray.matmul), so the counts match what a profiler sees on a GPU.

    fake_ndarray.py      the device array and matmul
    fake_kernels.py      RawModule, ElementwiseKernel, ReductionKernel (kernel_emulations.py:
                         the NumPy emulations of kernels/*.cu that RawModule runs)
    fake_cuda.py         cupy.cuda: events, device, runtime, stream; cuBLAS (fake_cublas.py)
    this module          the module-level functions, and installing it all in place of CuPy
"""
import contextlib
import sys
import types

import numpy as np

from .. import backend
from . import fake_cuda as cuda  # noqa: F401  (cupy.cuda)
from .counting import counter
from .fake_kernels import ElementwiseKernel, RawKernel, RawModule, ReductionKernel  # noqa: F401
from .fake_ndarray import counted, host_inputs, matmul, ndarray, unwrap, wrap  # noqa: F401


class _Ufunc:
    def __init__(self, name):
        self._u, self.__name__ = getattr(np, name), name

    def __call__(self, *args, **kwargs):
        return counted("elementwise", self.__name__, self._u, args, kwargs)

    def at(self, a, index, values=None):
        args = (index,) if values is None else (index, values)
        self._u.at(unwrap(a), *unwrap(args))
        counter.call("elementwise", f"{self.__name__}.at")

    def reduce(self, *args, **kwargs):
        return counted("reduction", f"{self.__name__}.reduce", self._u.reduce, args, kwargs)

    def outer(self, *args, **kwargs):
        return counted("elementwise", f"{self.__name__}.outer", self._u.outer, args, kwargs)


_ALLOC = {"empty", "empty_like"}
_FILL = {"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "linspace",
         "eye", "identity"}
_REDUCTIONS = {"sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "any", "all",
               "prod", "var", "std", "count_nonzero", "cumsum", "nansum", "nanmax", "nanmin",
               "average"}
_GEMM = {"dot", "vdot", "tensordot", "inner", "einsum"}
_COPIES = {"concatenate", "stack", "vstack", "hstack", "copy", "pad", "tile", "repeat"}
_ELEMENTWISE = {"where", "clip", "isnan", "isinf", "isfinite", "round", "around", "outer", "cross",
                "nan_to_num", "diff"}
_VIEWS = {"reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "moveaxis", "swapaxes",
          "flip", "fliplr", "flipud", "ravel", "atleast_1d", "atleast_2d", "broadcast_arrays",
          "split", "array_split"}
_HOST = {"result_type", "may_share_memory", "shares_memory", "shape", "ndim", "size", "iinfo",
         "finfo", "dtype", "can_cast", "promote_types", "isscalar", "issubdtype"}
_CATEGORIES = [(_FILL | _ELEMENTWISE, "elementwise"), (_REDUCTIONS, "reduction"), (_GEMM, "gemm"),
               (_COPIES, "copy"), (_VIEWS, "view")]


def _function(name):
    fn = getattr(np, name)
    if name in _HOST:
        return fn
    if name in _ALLOC:
        def alloc(*args, **kwargs):
            r = fn(*unwrap(args), **unwrap(kwargs))
            counter.alloc(r)
            return ndarray.view_of(r)
        return alloc
    category = next((c for names, c in _CATEGORIES if name in names), "other")

    def call(*args, **kwargs):
        if category == "view":
            inputs = host_inputs(args)
            r = fn(*unwrap(args), **unwrap(kwargs))
            fresh = isinstance(r, np.ndarray) and r.size
            if fresh and not any(np.may_share_memory(r, i) for i in inputs):
                counter.call("copy", name)
            return wrap(r, inputs)
        return counted(category, name, fn, args, kwargs)
    call.__name__ = name
    return call


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return a.astype(dtype)
    r = np.array(a, dtype=dtype, copy=True)
    counter.call("transfer", "host_to_device")
    counter.alloc(r)
    return ndarray.view_of(r)


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        if not copy and (dtype is None or np.dtype(dtype) == a.dtype):
            return a
        return counted("copy", "array", lambda x: np.array(x, dtype=dtype, copy=True, ndmin=ndmin),
                       (a,), {})
    return asarray(np.array(a, dtype=dtype, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError("ascontiguousarray: a NumPy array mixed into a device operation")
    if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return counted("copy", "ascontiguousarray", lambda x: np.ascontiguousarray(x, dtype=dtype),
                   (a,), {})


def asnumpy(a, stream=None, out=None):
    if isinstance(a, ndarray):
        counter.sync("asnumpy")
        return unwrap(a).copy()
    return np.asarray(a)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


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


class _Random:
    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def __getattr__(self, name):
        fn = getattr(np.random, name)

        def call(*args, **kwargs):
            r = fn(*unwrap(args), **unwrap(kwargs))
            counter.call("elementwise", f"random.{name}")
            r = np.asarray(r)
            counter.alloc(r)
            return ndarray.view_of(r)
        return call


random = _Random()
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    as_strided=lambda x, shape=None, strides=None, **k: ndarray.view_of(
        np.lib.stride_tricks.as_strided(unwrap(x), shape, strides, **k))))


def __getattr__(name):
    """Everything else NumPy has: ufuncs, functions (counted by category), constants and types."""
    if name.startswith("__") or name == "cublas":
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


@contextlib.contextmanager
def installed():
    """Make the engine's device='cuda' use this module inside the block (backend.use_cupy)."""
    with backend.use_cupy(sys.modules[__name__]) as module:
        yield module
