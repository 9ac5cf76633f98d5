"""Resuming a run: its checkpoint, and the options given again.

Resuming continues the run with every option it was started with. Options given again must
agree with the run's: pressing up-arrow and adding --resume repeats the whole first command,
whose values are the run's. Only the runtime options (device, workers, ...) may change, and
--steps or --epochs may grow, which extends the run (recipe.plan checks that against the run's
schedule once the data is read).
"""
import os
from pathlib import Path

from .checkpoint import read_checkpoint
from .config import RUNTIME_OPTIONS, TrainConfig, conflict
from .errors import TrainError
from .run_folder import latest_run


def checkpoint_to_resume(path):
    """The checkpoint dict of a run's last.npz, which must hold the state to continue from."""
    saved = read_checkpoint(path)
    if "train" not in saved:
        raise TrainError(f"{path}: holds no training state to resume from")
    return saved


def saved_options(out):
    """The options of the run ``--resume --out out`` would continue ({} when there is none: the
    resumed run then names what is missing)."""
    try:
        path = Path(out) if (Path(out) / "last.npz").is_file() else latest_run(out)
        return read_checkpoint(path / "last.npz").get("train_config", {})
    except Exception:  # noqa: BLE001 -- whatever is wrong, the resumed run reports it
        return {}


def resume_config(saved: dict, cfg: TrainConfig, given) -> TrainConfig:
    """The saved run's options (``saved``, its train_config) with those of ``cfg`` named in
    ``given`` that may change; TrainError naming both values for one that conflicts."""
    merged = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.names()})
    for name in given:
        value = getattr(cfg, name)
        if name in RUNTIME_OPTIONS or name == "batch_size":
            setattr(merged, name, value)  # a batch size is checked by recipe.plan, which clamps it
        elif name in ("steps", "epochs"):  # the length in either unit, checked by recipe.plan
            merged.steps, merged.epochs = cfg.steps, cfg.epochs
        elif not same_option(name, value, saved):
            raise conflict(name, value, saved.get(name))
    return merged


def same_option(name, value, saved):
    """Whether ``value`` given for option ``name`` is the one the run stored (which recipe.plan
    resolved: a path made absolute, a window of the whole image stored as 0)."""
    before = saved.get(name)
    if name in ("data", "pretrained") and value is not None and before is not None:
        return same_path(value, before)
    if name == "window" and before == 0:
        return value in (0, saved["img_size"])
    return value == before


def same_path(a, b):
    return Path(os.path.expanduser(a)).resolve() == Path(os.path.expanduser(b)).resolve()


__all__ = ["checkpoint_to_resume", "resume_config", "same_option"]
