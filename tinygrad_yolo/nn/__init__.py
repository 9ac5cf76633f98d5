"""Neural-network building blocks: functional ops (nn.functional) and Modules."""
from . import functional  # noqa: F401
