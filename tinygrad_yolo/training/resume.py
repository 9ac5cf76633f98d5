"""Resuming a run: its checkpoint, and the options given again.

Resuming continues the run with every option it was started with. An option given again must
agree with the run's, except the runtime ones (device, workers, ...) and a larger --steps /
--epochs, which extends the run (recipe.plan checks that against the run's schedule once the
data is read).
"""
import os
from pathlib import Path

from .checkpoint import read_checkpoint
from .config import RUNTIME_OPTIONS, TrainConfig, conflict
from .errors import TrainError


def checkpoint_to_resume(path):
    """The checkpoint dict of a run's last.npz, which must hold the state to continue from."""
    saved = read_checkpoint(path)
    if "train" not in saved:
        raise TrainError(f"{path}: holds no training state to resume from")
    return saved


def resume_config(saved: dict, cfg: TrainConfig, given) -> TrainConfig:
    """The saved run's options (``saved``, its train_config) with those of ``cfg`` named in
    ``given`` that may change; TrainError naming both values for one that conflicts."""
    merged = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.names()})
    for name in given:
        value, before = getattr(cfg, name), saved.get(name)
        if name in RUNTIME_OPTIONS or name in ("steps", "epochs"):
            setattr(merged, name, value)
        elif name == "data" and None not in (value, before) and same_path(value, before):
            continue
        elif value != before:
            raise conflict(name, value, before)
    return merged


def same_path(a, b):
    return Path(os.path.expanduser(a)).resolve() == Path(os.path.expanduser(b)).resolve()


__all__ = ["checkpoint_to_resume", "resume_config"]
