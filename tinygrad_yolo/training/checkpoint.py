"""Detector checkpoints: what ``train`` writes, and loading one from any file safely.

A checkpoint is a ``tg.save`` archive holding
    model     the weights to detect with (the moving average of the weights, when training kept
              one)
    config    the model's constructor arguments (YOLOv1: backbone, S, B, C, img_size, width, ...)
    classes   the class names, in label order
    data      where the data came from: its path, layout, splits (and the ids of a split made here)
and, in ``last.npz`` only, ``train``: everything needed to continue exactly (the raw weights,
optimizer and schedule state, the average's state, the loader's position, the generator state).

Loading checks, in order, each failure one ``CheckpointError`` line: the archive itself (sizes
capped before reading: see serialization.py), the entries above, the config's values, then the
model is built *without initialising it* (nn.init.skip_init) and the weights' shapes checked
against it before a single value is copied.
"""
import math
from pathlib import Path

from ..models.yolo import BACKBONES, YOLOv1
from ..nn import init
from ..nn.module import StateDictError
from ..serialization import CheckpointError, load, save


def build_model(config, num_classes=None):
    """The YOLOv1 a model config describes (``num_classes`` overrides its C)."""
    return YOLOv1(backbone=config["backbone"], S=config["S"], B=config["B"],
                  C=config["C"] if num_classes is None else num_classes,
                  img_size=config["img_size"], width=config["width"], head=config["head"],
                  hidden=config.get("hidden"),
                  dropout=config.get("dropout", 0.5), stride=config.get("stride", 32))


# value ranges a model config may take; anything outside is not a model train could have made
_INT_RANGES = {"S": (1, 128), "B": (1, 16), "C": (1, 10000), "img_size": (32, 4096)}


def check_model_config(config, where):
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: 'config' is a {type(config).__name__}, not the model's "
                              f"settings")
    for key in ("backbone", "S", "B", "C", "img_size", "width", "head"):
        if key not in config:
            raise CheckpointError(f"{where}: the model config lacks {key!r}; not a detector "
                                  f"checkpoint")
    for key, (low, high) in _INT_RANGES.items():
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(f"{where}: model config {key} = {value!r} is outside "
                                  f"{low}..{high}")
    width = config["width"]
    if (isinstance(width, bool) or not isinstance(width, (int, float))
            or not (0 < width <= 4 and math.isfinite(width))):
        raise CheckpointError(f"{where}: model config width = {width!r} is outside (0, 4]")
    if config["backbone"] not in BACKBONES or config["head"] not in ("conv", "fc"):
        raise CheckpointError(f"{where}: unknown backbone {config['backbone']!r} or head "
                              f"{config['head']!r}")
    hidden = config.get("hidden")
    if hidden is not None and (isinstance(hidden, bool) or not isinstance(hidden, int)
                               or not 1 <= hidden <= 65536):
        raise CheckpointError(f"{where}: model config hidden = {hidden!r} is outside 1..65536")
    if config.get("stride", 32) not in (16, 32):
        raise CheckpointError(f"{where}: model config stride = {config.get('stride')!r} is not 16 "
                              f"or 32")
    dropout = config.get("dropout", 0.5)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise CheckpointError(f"{where}: model config dropout = {dropout!r} is outside [0, 1)")


def _state_problem(state):
    if not isinstance(state, dict) or not state:
        return "'model' is not a dict of arrays"
    bad = [k for k, v in state.items() if not hasattr(v, "dtype")]
    return f"'model' entries {bad[:3]} are not arrays" if bad else None


def read_checkpoint(path):
    """The checkpoint dict of a detector checkpoint, its entries checked (no model built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file"
                              + (" (it is a folder)" if path.is_dir() else ""))
    ckpt = load(path)
    where = str(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{where}: not a tinygrad-yolo detector checkpoint (a "
                              f"{type(ckpt).__name__})")
    for key in ("model", "config", "classes"):
        if key not in ckpt:
            raise CheckpointError(f"{where}: not a tinygrad-yolo detector checkpoint (no {key!r} "
                                  f"entry)")
    check_model_config(ckpt["config"], where)
    classes = ckpt["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{where}: 'classes' must be a list of names")
    if len(classes) != ckpt["config"]["C"]:
        raise CheckpointError(f"{where}: {len(classes)} class names for a model of C = "
                              f"{ckpt['config']['C']}")
    problem = _state_problem(ckpt["model"])
    if problem:
        raise CheckpointError(f"{where}: {problem}")
    return ckpt


def model_from_state(config, state, where):
    """Build the model ``config`` describes, uninitialised, and load ``state`` into it."""
    try:
        with init.skip_init():
            model = build_model(config)
    except MemoryError:
        raise CheckpointError(f"{where}: the model its config describes does not fit in "
                              f"memory") from None
    except ValueError as e:
        raise CheckpointError(f"{where}: its model config can't be built: {e}") from None
    try:
        model.load_state_dict(state)
    except StateDictError as e:
        raise CheckpointError(f"{where}: the weights don't fit the model its config describes: "
                              f"{e}") from None
    return model


def load_checkpoint(path):
    """(model, checkpoint dict) of a detector checkpoint; ``CheckpointError`` otherwise."""
    ckpt = read_checkpoint(path)
    return model_from_state(ckpt["config"], ckpt["model"], str(path)), ckpt


def save_checkpoint(path, ckpt):
    return save(ckpt, path)


__all__ = ["build_model", "check_model_config", "read_checkpoint", "model_from_state",
           "load_checkpoint", "save_checkpoint", "CheckpointError"]
