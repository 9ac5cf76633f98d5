"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules."""
from .adam import Adam, AdamW  # noqa: F401
from .lr_scheduler import CosineAnnealingLR, LinearWarmup, LRScheduler, MultiStepLR, StepLR  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
