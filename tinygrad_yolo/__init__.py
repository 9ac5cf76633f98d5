"""tinygrad_yolo: a from-scratch reverse-mode autograd engine on NumPy/CuPy,
with ResNet and YOLOv1 built on it.

    import tinygrad_yolo as tg
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x
"""
import importlib as _importlib
import os as _os

# The one process-wide setting the package makes, and why. OpenBLAS's idle worker threads
# busy-wait for a long time after every GEMM; on a 2-core machine that spinning slows all the
# NumPy work between GEMMs (im2col copies, batch norm, pooling) several times over: a width-0.25
# training step ran 1.30 s with the default and 0.76 s with this (docs/performance.md has the
# measurements). OPENBLAS_THREAD_TIMEOUT=4 (the minimum, 2^4 cycles) makes idle workers sleep at
# once. OpenBLAS reads it when it loads, so it must be set before the first `import numpy`: it has
# no effect if NumPy was imported first (then set OPENBLAS_THREAD_TIMEOUT=4 in the environment).
# A user's value wins.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from .backend import cuda_available  # noqa: E402
from .function import Function, enable_grad, is_grad_enabled, no_grad  # noqa: E402
from .debug import AnomalyError, detect_anomaly, profile  # noqa: E402
from .gradcheck import GradcheckError, check_gradients, gradcheck  # noqa: E402
from .tensor import Tensor  # noqa: E402
from .amp import autocast  # noqa: E402  (after the engine: ops/ import amp.autocast)
from .creation import (arange, cat, concatenate, maximum, minimum, ones, ones_like,  # noqa: E402
                       rand, randn, stack, tensor, where, zeros, zeros_like)
from .serialization import CheckpointError, load, save  # noqa: E402
from .utils import manual_seed, seed  # noqa: E402

__version__ = "0.2.0"

# Subpackages load when first used (tg.nn, tg.models, ...), so `import tinygrad_yolo` loads the
# engine only; `from tinygrad_yolo import nn` works as usual.
_SUBPACKAGES = ("amp", "cuda", "detection", "models", "nn", "optim", "viz")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")  # also sets it as an attribute here
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
