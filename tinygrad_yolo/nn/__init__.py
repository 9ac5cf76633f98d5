"""Neural-network building blocks: functional ops (nn.functional), Modules and init."""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: F401
from .container import ModuleList, Sequential  # noqa: F401
from .conv import Conv2d  # noqa: F401
from .dropout import Dropout  # noqa: F401
from .linear import Flatten, Identity, Linear  # noqa: F401
from .module import Module  # noqa: F401
from .norm import BatchNorm1d, BatchNorm2d  # noqa: F401
from .parameter import Parameter  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: F401
