"""Device <-> array module. The only file in the package that imports CuPy.

Every op receives raw arrays and asks ``array_module(x)`` for ``numpy`` or
``cupy``, so one code path serves both devices (DeZero's ``get_array_module``).
``use_cupy`` runs device="cuda" on a stand-in module instead (tinygrad_yolo.testing.fake_cupy).
"""
import contextlib
import importlib
import importlib.util
import os
import sys

import numpy as np

_cupy = None
_cupy_error = None


def _load_cupy():
    """Import CuPy once; remember why it failed so the error can say so."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()  # raises without a driver / GPU
            _cupy = cupy
        except Exception as e:  # ImportError, CUDARuntimeError, ...
            _cupy_error = f"{type(e).__name__}: {e}"
    return _cupy


@contextlib.contextmanager
def use_cupy(module):
    """Inside the block device="cuda" runs on ``module`` in place of CuPy: a stand-in with CuPy's
    interface, such as tinygrad_yolo.testing.fake_cupy on a machine without a GPU. The state
    before (CuPy, or why it could not be loaded) comes back after the block."""
    global _cupy, _cupy_error
    saved = _cupy, _cupy_error
    _cupy, _cupy_error = module, None
    try:
        yield module
    finally:
        _cupy, _cupy_error = saved


def cuda_available():
    return _load_cupy() is not None


def cupy_module():
    """CuPy, or a clear error naming what is missing."""
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(
            "device='cuda' needs CuPy and an NVIDIA GPU, but CuPy could not be used "
            f"({_cupy_error}). Install it with `pip install tinygrad_yolo[cuda12]` "
            "(or [cuda13]) on a machine with a GPU, or use device='cpu'.")
    return cp


# What a missing CUDA library needs: CuPy 14 loads cuBLAS and NVRTC lazily, from the [ctk]
# extra's wheels or a system CUDA toolkit, so a bare `pip install cupy-cuda12x` imports and sees
# the GPU but fails at the first GEMM or kernel compile.
CUDA_LIBRARY_FIX = ("install CuPy with its CUDA libraries, `pip install \"tinygrad_yolo[cuda12]\"` "
                    "(or [cuda13]; they pull cupy-cuda12x[ctk]), or a CUDA toolkit")
_PROBE_SOURCE = 'extern "C" __global__ void tg_probe(float* x) { x[threadIdx.x] = 1.0f; }'


def missing_library(name, error):
    """The one-line error for a CUDA library CuPy could not load."""
    first = (str(error).strip().splitlines() or [""])[0]  # CuPy's messages may run on
    return RuntimeError(f"{name} could not be loaded for device='cuda' ({type(error).__name__}: "
                        f"{first}); {CUDA_LIBRARY_FIX}")


def cublas_module(cp):
    """CuPy's cuBLAS bindings: cupy.cuda.cublas, or where a CuPy version keeps them only there,
    cupy_backends.cuda.libs.cublas. CuPy 14 loads the library on this first touch and raises
    ImportError when it is missing, which getattr's default would not catch."""
    try:
        try:
            return cp.cuda.cublas
        except AttributeError:
            return importlib.import_module("cupy_backends.cuda.libs.cublas")
    except ImportError as e:
        raise missing_library("cuBLAS", e) from None


def probe_cuda_libraries():
    """Load cuBLAS (a handle) and compile one tiny kernel with NVRTC, before any work, so that
    device='cuda' on a machine without CuPy's CUDA libraries fails here in one line naming the
    library, not at the first convolution. Returns CuPy."""
    cp = cupy_module()
    cublas_module(cp)  # its own one-line error
    try:
        cp.cuda.device.get_cublas_handle()
    except Exception as e:  # ImportError (libcublasLt), CUBLASError from the handle's creation
        raise missing_library("cuBLAS", e) from None
    try:
        cp.RawModule(code=_PROBE_SOURCE).get_function("tg_probe")
    except Exception as e:  # ImportError (no libnvrtc), CompileException
        raise missing_library("NVRTC (CUDA's runtime compiler)", e) from None
    return cp


def check_device(device):
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    return device


def xp_for(device):
    """The array module for a device name."""
    return np if check_device(device) == "cpu" else cupy_module()


def is_cuda_array(a):
    # No import needed: a CuPy array's class lives in the cupy package.
    return type(a).__module__.startswith("cupy")


def array_module(a):
    """numpy or cupy, whichever owns array ``a``."""
    return _cupy if is_cuda_array(a) else np


def device_of(a):
    return "cuda" if is_cuda_array(a) else "cpu"


def to_device(a, device):
    """Copy array ``a`` to ``device`` (no copy when it is already there)."""
    if device_of(a) == check_device(device):
        return a
    if device == "cuda":
        return cupy_module().asarray(a)
    return a.get()


def to_numpy(a):
    return a.get() if is_cuda_array(a) else np.asarray(a)


def scatter_add(out, index, values):
    """out[index] += values with repeated indices adding up (for indexing backward)."""
    if is_cuda_array(out):
        if hasattr(_cupy.add, "at"):  # CuPy >= 13; cupyx.scatter_add is deprecated there
            _cupy.add.at(out, index, values)
        else:
            import cupyx  # ships with cupy
            cupyx.scatter_add(out, index, values)
    else:
        np.add.at(out, index, values)


def synchronize(a=None):
    """Wait for queued GPU work (so timings measure the op, not its launch)."""
    if _cupy is not None and (a is None or is_cuda_array(a)):
        _cupy.cuda.Device().synchronize()


KERNEL_PACKAGE = "tinygrad_yolo.kernels"
# kernels/ beside this package: a source checkout has it, an installed package does not
_CHECKOUT_KERNELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "kernels")


def cuda_kernels(module=None):
    """The CUDA kernel package (the top-level kernels/, installed as tinygrad_yolo.kernels), or
    with ``module`` one of its modules ("fused": kernels/fused.py, "gemm": kernels/gemm.py);
    each is imported once. The one loader of the kernels' Python side.

    In a source checkout (kernels/ with its .cu sources beside the package) the package is read
    from that folder first, so that the kernels always match the package they are used with,
    even where another checkout is installed (an editable install maps tinygrad_yolo.kernels to
    its own kernels/). Its modules and .cu sources are read from the same folder as it.
    """
    package = sys.modules.get(KERNEL_PACKAGE) or _import_kernel_package()
    if module is None:
        return package
    return importlib.import_module(f"{KERNEL_PACKAGE}.{module}")


def _import_kernel_package():
    folder = _CHECKOUT_KERNELS
    if not os.path.isfile(os.path.join(folder, "im2col.cu")):
        try:
            return importlib.import_module(KERNEL_PACKAGE)
        except ModuleNotFoundError as e:
            if e.name != KERNEL_PACKAGE:
                raise
            raise RuntimeError(f"the CUDA kernels are missing: neither {KERNEL_PACKAGE} nor "
                               f"{folder} exists") from None
    spec = importlib.util.spec_from_file_location(
        KERNEL_PACKAGE, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules[KERNEL_PACKAGE] = package
    spec.loader.exec_module(package)
    return package


def loaded_cupy():
    """CuPy once something has loaded it (a device="cuda" call), else None; never imports it."""
    return _cupy
