"""``open_dataset(path)``: whatever layout a user brings, found and read without conversion.

    a Pascal VOC root        Annotations/, JPEGImages/, ImageSets/Main/<split>.txt
    VOC XML folders          images with their .xml beside them or in a sibling folder
    YOLO txt                 data.yaml (or a folder holding one), or labels/ beside images/
    COCO JSON                instances.json, or a folder with annotations/*.json

The result is a ``DataSource``: its splits (one ``DetectionDataset`` each), one class list shared
by all of them, the layout's name, and notes on anything found by a second guess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .coco import find_coco_files, read_coco_source
from .dataset import DatasetError, DetectionDataset, parse_classes
from .images import is_image_file
from .files import walk_files
from .voc import (is_voc_root, keep_known_classes, read_voc_split, read_xml_folder,
                  resolve_classes)
from .yolo_txt import find_yaml, has_yolo_labels, read_yolo_folder, read_yolo_yaml

TRAIN_NAMES = ("train", "training", "train2017", "train2014", "trainval")
VAL_NAMES = ("val", "valid", "validation", "val2017", "val2014", "test", "testing", "test2017")


@dataclass
class DataSource:
    layout: str                          # e.g. "YOLO txt (data.yaml)"
    path: Path
    classes: List[str]
    splits: Dict[str, DetectionDataset]
    notes: List[str] = field(default_factory=list)

    def role(self, names) -> Optional[str]:
        """The first of ``names`` (case-insensitive) that is a split here."""
        lower = {s.lower(): s for s in self.splits}
        return next((lower[n] for n in names if n in lower), None)

    def train_split(self) -> str:
        name = self.role(TRAIN_NAMES)
        if name is None and len(self.splits) == 1:
            name = next(iter(self.splits))
        if name is None:
            raise DatasetError(f"{self.path}: can't tell which split is for training among "
                               f"{sorted(self.splits)}; name it with --train-split")
        return name

    def val_split(self) -> Optional[str]:
        return self.role(VAL_NAMES)

    def summary(self) -> str:
        parts = [f"{name} {len(ds):,} images / {ds.num_boxes():,} boxes"
                 for name, ds in self.splits.items()]
        return (f"{self.layout} at {self.path}: {', '.join(parts)}; {len(self.classes)} classes "
                f"{self.classes if len(self.classes) <= 12 else self.classes[:12] + ['...']}")


def _count_xml(root: Path) -> int:
    return sum(1 for f in walk_files(root) if f.suffix.lower() == ".xml")


def _voc_root(root: Path, classes, skip_bad, draft_size) -> DataSource:
    main = root / "ImageSets" / "Main"
    # VOC's per-class lists (aeroplane_train.txt, ...) are not splits
    names = [p.stem for p in sorted(main.glob("*.txt")) if "_" not in p.stem]
    if not names:
        raise DatasetError(f"{main}: no split files (train.txt, val.txt, ...)")
    preferred = [n for n in ("train", "val", "test") if n in names] or names
    # Parse each split once, then give every split one class list (from all of them).
    records = {n: read_voc_split(root, n, skip_bad) for n in preferred}
    class_list = resolve_classes([r for rs in records.values() for r in rs], classes, root)
    splits = {n: _dataset(rs, class_list, n, root, skip_bad, draft_size)
              for n, rs in records.items()}
    return DataSource("Pascal VOC root", root, class_list, splits)


def _dataset(records, classes, split, root, skip_bad, draft_size):
    records = keep_known_classes(records, classes, skip_bad)
    return DetectionDataset(records, classes, split, root, draft_size)


def _from_records(layout, root, record_splits, class_list, notes, skip_bad,
                  draft_size) -> DataSource:
    if not any(record_splits.values()):
        raise DatasetError(f"{root}: no images found for the {layout} layout")
    splits = {n: _dataset(rs, class_list, n, root, skip_bad, draft_size)
              for n, rs in record_splits.items() if rs}
    return DataSource(layout, root, class_list, splits, notes)


def open_dataset(path, classes=None, skip_bad: bool = False,
                 draft_size: Optional[int] = None) -> DataSource:
    """Detect the layout of ``path`` (a folder, a data.yaml or a COCO .json) and read it.

    classes: a list, "a,b,c" or a file with one name per line, overriding the data's own names.
    """
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    explicit = parse_classes(classes)
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return _yolo(path, path.parent, explicit, skip_bad, draft_size)
        if path.suffix.lower() == ".json":
            return _coco([path], path.parent, explicit, skip_bad, draft_size)
        raise DatasetError(f"{path}: a file, but neither a data.yaml nor a COCO .json; "
                           f"give a dataset folder")
    if is_voc_root(path):
        return _voc_root(path, explicit, skip_bad, draft_size)
    nested = [p for p in sorted(path.iterdir()) if p.is_dir() and is_voc_root(p)]
    if len(nested) == 1 and not any(is_image_file(p) for p in path.iterdir()):  # VOCdevkit/VOC2007
        source = _voc_root(nested[0], explicit, skip_bad, draft_size)
        source.notes.append(f"using the VOC root {nested[0]} inside {path}")
        return source
    yaml_path = find_yaml(path)
    if yaml_path is not None:
        return _yolo(yaml_path, path, explicit, skip_bad, draft_size)
    coco = find_coco_files(path)
    if coco:
        return _coco(coco, path, explicit, skip_bad, draft_size)
    n_xml, n_txt = _count_xml(path), has_yolo_labels(path)
    if n_xml == 0 and n_txt == 0:
        n_images = sum(1 for f in walk_files(path) if is_image_file(f))
        raise DatasetError(f"{path}: no annotations found ({n_images} images; looked for a VOC "
                           f"root, VOC .xml files, a data.yaml or YOLO .txt labels, and COCO "
                           f".json)")
    if n_xml >= n_txt:
        record_splits, notes = read_xml_folder(path, skip_bad)
        records = [r for rs in record_splits.values() for r in rs]
        class_list = resolve_classes(records, explicit, path)
        return _from_records("VOC XML folder", path, record_splits, class_list, notes, skip_bad,
                             draft_size)
    record_splits, names, notes = read_yolo_folder(path, explicit, skip_bad)
    return _from_records("YOLO txt folder", path, record_splits, names, notes, skip_bad, draft_size)


def _yolo(yaml_path, root, explicit, skip_bad, draft_size) -> DataSource:
    record_splits, names, notes = read_yolo_yaml(yaml_path, skip_bad)
    if explicit is not None:
        if len(explicit) != len(names):
            raise DatasetError(
                f"--classes names {len(explicit)} classes but {yaml_path} has {len(names)}")
        rename = dict(zip(names, explicit))
        record_splits = {k: [r._replace(names=tuple(rename[n] for n in r.names)) for r in rs]
                         for k, rs in record_splits.items()}
        names = explicit
    return _from_records("YOLO txt (data.yaml)", yaml_path.parent if root is None else root,
                         record_splits, names, notes, skip_bad, draft_size)


def _coco(files, root, explicit, skip_bad, draft_size) -> DataSource:
    record_splits, names, notes = read_coco_source(files, root, skip_bad)
    class_list = explicit if explicit is not None else names
    return _from_records("COCO JSON", root, record_splits, class_list, notes, skip_bad, draft_size)


def split_off(dataset: DetectionDataset, fraction: float, seed: int):
    """(train ids, val ids): a seeded random ``fraction`` of the images for validation."""
    ids = sorted(dataset.ids)
    n_val = int(round(fraction * len(ids)))
    n_val = min(max(n_val, 1), len(ids) - 1)
    order = np.random.default_rng([seed, 7]).permutation(len(ids))
    val = sorted(ids[k] for k in order[:n_val])
    return sorted(set(ids) - set(val)), val
