"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules."""
from .adam import Adam, AdamW  # noqa: F401
from .lr_scheduler import (CosineAnnealingLR, LinearWarmup, LRScheduler,  # noqa: F401
                           MultiStepLR, StepLR)
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
