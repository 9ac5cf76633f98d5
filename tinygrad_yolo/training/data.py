"""The data of a run: the dataset read from whatever layout, its train and validation splits
(a seeded part of train held out when the data has none), every image checked up front."""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DatasetError, ensure_synthetic_voc, open_dataset, verify_image
from ..data.layouts import split_off
from .errors import TrainError

DEFAULT_DATA = Path(os.environ.get("TINYGRAD_YOLO_DATA",
                                   Path.home() / ".cache" / "tinygrad_yolo" / "synthetic_voc"))


@dataclass
class TrainingData:
    source: object                 # the DataSource
    train: object                  # DetectionDataset
    val: object
    info: dict                     # what the checkpoint keeps to find the same data and splits
    warnings: list = field(default_factory=list)

    @property
    def classes(self):
        return self.source.classes


def first_twenty(messages):
    more = len(messages) - 20
    return "; ".join(messages[:20]) + (f"; and {more} more" if more > 0 else "")


def _read(path, classes):
    """The DataSource, and its warnings; every broken file named in one error, not the first."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = open_dataset(path, classes=classes, skip_bad=True)
    messages = [str(w.message) for w in caught]
    broken = [m.split(": ", 1)[1] for m in messages if m.startswith("skipping ")]
    if broken:
        shown = first_twenty(broken)
        raise DatasetError(f"{len(broken)} file{'s' if len(broken) > 1 else ''} of the data "
                           f"{'are' if len(broken) > 1 else 'is'} broken: {shown}")
    return source, messages


def open_training_data(cfg, saved=None) -> TrainingData:
    """The dataset ``cfg.data`` names (the synthetic set when None), split for training.

    saved: a checkpoint's "data" entry; its splits (and a held-out validation part) are used as
    they were, so a resumed run and ``eval`` see exactly the same images."""
    if cfg.data is None:
        root = ensure_synthetic_voc(DEFAULT_DATA, **cfg.synthetic)
    else:
        root = Path(os.path.expanduser(cfg.data))
    source, notes = _read(root, cfg.classes)
    train_name = cfg.train_split or (saved or {}).get("train_split") or source.train_split()
    if train_name not in source.splits:
        raise TrainError(f"--train-split {train_name!r}: {source.path} has the splits "
                         f"{sorted(source.splits)}")
    val_name = cfg.val_split or (saved or {}).get("val_split") or source.val_split()
    if val_name is not None and val_name not in source.splits:
        raise TrainError(f"--val-split {val_name!r}: {source.path} has the splits "
                         f"{sorted(source.splits)}")
    if val_name == train_name:
        raise TrainError(f"--val-split {val_name!r} is also the training split; name another, or "
                         f"leave it out to hold out --val-fraction of the training images")
    train = source.splits[train_name]
    info = {"path": None if cfg.data is None else str(Path(root).resolve()),
            "layout": source.layout, "train_split": train_name, "val_split": val_name}
    if val_name is not None:
        val = source.splits[val_name]
    else:
        held = (saved or {}).get("held_out") or hold_out(train, cfg, source)
        train, val = split_held_out(train, train_name, held, source)
        info["held_out"] = held
    if len(train) == 0:
        raise TrainError(f"{source.path}: the {train_name!r} split holds no images")
    if len(val) == 0:
        raise TrainError(f"{source.path}: the validation split {val_name!r} holds no images")
    return TrainingData(source, train, val, info, notes)


def hold_out(train, cfg, source):
    """A new held-out validation part of ``train``: --val-fraction of it, drawn with --seed."""
    if len(train) < 2:
        raise TrainError(f"{source.path}: the training split has {len(train)} image(s); at least 2 "
                         f"are needed to hold one out for validation (or give --val-split)")
    _, val_ids = split_off(train, cfg.val_fraction, cfg.seed)
    return {"fraction": cfg.val_fraction, "seed": cfg.seed, "val_ids": val_ids}


def split_held_out(train, train_name, held, source):
    """(the training part, the validation part) of ``train`` for a held-out part ``held``."""
    position = {image_id: k for k, image_id in enumerate(train.ids)}
    missing = [i for i in held["val_ids"] if i not in position]
    if missing:
        raise TrainError(f"{source.path}: {len(missing)} image(s) of this run's validation split "
                         f"are gone from the data (e.g. {missing[0]!r}); the split can't be "
                         f"rebuilt")
    val_set = set(held["val_ids"])
    val = train.subset([position[i] for i in held["val_ids"]], "val (held out)")
    return train.subset([k for k, i in enumerate(train.ids) if i not in val_set], train_name), val


def verify_images(datasets, workers=2, progress=None):
    """Decode every image once (small) so a truncated or corrupt file is named now, before the
    first step, not when the loader reaches it. Raises DatasetError naming every broken file."""
    jobs = {}
    for ds in datasets:
        for r in ds.records:
            jobs.setdefault(r.image_path, r.exif)
    broken = []

    def check(item):
        path, exif = item
        try:
            verify_image(path, exif)
        except DatasetError as e:
            return str(e)
        finally:
            if progress is not None:
                progress(1)
        return None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        broken = [m for m in pool.map(check, jobs.items()) if m]
    if broken:
        raise DatasetError(f"{len(broken)} of {len(jobs)} images can't be used: "
                           f"{first_twenty(broken)}")
    return len(jobs)
