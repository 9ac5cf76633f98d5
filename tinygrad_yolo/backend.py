"""Device <-> array module. The only file in the package that imports CuPy.

Every op receives raw arrays and asks ``array_module(x)`` for ``numpy`` or
``cupy``, so one code path serves both devices (DeZero's ``get_array_module``).
``use_cupy`` runs device="cuda" on a stand-in module instead (tinygrad_yolo.testing.fake_cupy).
"""
import contextlib

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


def cuda_kernels():
    """The CUDA kernel loader (kernels/__init__.py), imported once.

    setup.py installs the top-level kernels/ folder as ``tinygrad_yolo.kernels``. In a source
    checkout (kernels/ with its .cu sources beside the package) the loader is read from that
    folder first, so that the kernels always match the package they are used with, even where
    another checkout is installed (an editable install maps tinygrad_yolo.kernels to its own
    kernels/). Either way the .cu sources sit next to it.
    """
    import importlib
    import importlib.util
    import os
    import sys
    if "tinygrad_yolo.kernels" in sys.modules:
        return sys.modules["tinygrad_yolo.kernels"]
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")
    if not os.path.isfile(os.path.join(folder, "im2col.cu")):
        try:
            return importlib.import_module("tinygrad_yolo.kernels")
        except ModuleNotFoundError as e:
            if e.name != "tinygrad_yolo.kernels":
                raise
    spec = importlib.util.spec_from_file_location("tinygrad_yolo.kernels", os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    if spec is None or not os.path.isfile(spec.origin):
        raise RuntimeError(f"the CUDA kernels are missing: neither tinygrad_yolo.kernels nor {folder} exists")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cuda_kernel_module(name):
    """One module of the kernel package (e.g. "fused" for kernels/fused.py), beside the loader that
    cuda_kernels() found; where that copy lacks it (an older install shadowing a source checkout
    on PYTHONPATH), the one in kernels/ beside this package."""
    import importlib
    import importlib.util
    import os
    import sys
    cuda_kernels()
    full = f"tinygrad_yolo.kernels.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name != full:
            raise
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels", f"{name}.py")
    spec = importlib.util.spec_from_file_location(full, path)
    if spec is None or not os.path.isfile(path):
        raise RuntimeError(f"the CUDA kernel module {name!r} is missing: neither {full} nor {path} exists")
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)
    return module
