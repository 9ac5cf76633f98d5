"""tinygrad_yolo: a from-scratch reverse-mode autograd engine on NumPy/CuPy,
with ResNet and YOLOv1 built on it.

    import tinygrad_yolo as tg
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2 * x
"""
from .backend import cuda_available
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .debug import AnomalyError, detect_anomaly, profile
from .gradcheck import GradcheckError, check_gradients, gradcheck
from .tensor import (Tensor, arange, cat, concatenate, maximum, minimum, ones, ones_like, rand, randn,
                     stack, tensor, where, zeros, zeros_like)
from . import detection, nn, viz  # noqa: E402

__version__ = "0.1.0"
from .serialization import CheckpointError, load, save  # noqa: E402
from .utils import seed  # noqa: E402
from . import models, optim  # noqa: E402
