"""Device <-> array module. The only file in the package that imports CuPy.

Every op receives raw arrays and asks ``array_module(x)`` for ``numpy`` or
``cupy``, so one code path serves both devices (DeZero's ``get_array_module``).
"""
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
        import cupyx  # ships with cupy
        cupyx.scatter_add(out, index, values)
    else:
        np.add.at(out, index, values)


def synchronize(a=None):
    """Wait for queued GPU work (so timings measure the op, not its launch)."""
    if _cupy is not None and (a is None or is_cuda_array(a)):
        _cupy.cuda.Device().synchronize()
