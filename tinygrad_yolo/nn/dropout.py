"""Dropout: inverted dropout in training (survivors scaled by 1/(1-p)), identity in eval."""

from .. import backend
from ..utils import get_rng
from .module import Module


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        # The mask is drawn on the host from the package generator so tg.seed() repeats it
        # on any device; multiplying by a constant array keeps the op differentiable.
        keep = get_rng().random(x.shape) >= self.p
        mask = (keep / (1.0 - self.p)).astype(x.dtype)
        return x * backend.to_device(mask, x.device)

    def extra_repr(self):
        return f"p={self.p}"
