"""Parameter: a Tensor that a Module registers as learnable (requires_grad=True)."""
import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor with ``requires_grad=True`` by default.

    Assigning one to a Module attribute registers it, so ``parameters()``,
    ``state_dict()`` and optimizers find it. Ops on a Parameter give plain Tensors.
    """

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        if not (hasattr(data, "__array_interface__") or hasattr(data, "__cuda_array_interface__")):
            data = np.asarray(data, dtype=np.float32)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
