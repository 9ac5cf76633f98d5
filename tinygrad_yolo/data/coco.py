"""COCO detection JSON: ``images`` (id, file_name), ``annotations`` (image_id, category_id,
bbox = [x, y, width, height] in pixels, iscrowd) and ``categories`` (id, name).

Accepted as ``--data instances.json`` or a folder holding ``annotations/*.json`` (COCO's own
layout, images in ``train2017/`` etc. or ``images/``) or one JSON per split folder (Roboflow's
``train/_annotations.coco.json`` beside its images).  ``iscrowd`` boxes are kept as "difficult":
evaluation ignores them and training leaves them out.  Categories that no annotation uses (as
Roboflow's umbrella category) are left out of the class list.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np

from .dataset import DatasetError, Record, pixel_boxes_to_normalised, read_text
from .images import image_info
from .files import SPLIT_NAMES, inside


def load_coco_json(path: Path) -> dict:
    try:
        data = json.loads(read_text(path, "COCO annotation file"))
    except json.JSONDecodeError as e:
        raise DatasetError(f"cannot parse COCO annotation file {str(path)!r}: {e}") from None
    except RecursionError:
        raise DatasetError(
            f"COCO annotation file {str(path)!r} is nested too deeply to be COCO") from None
    if not is_coco(data):
        raise DatasetError(f"{str(path)!r} is not a COCO detection file (needs lists 'images', "
                           f"'annotations' and 'categories')")
    return data


def is_coco(data) -> bool:
    return isinstance(data, dict) and all(isinstance(data.get(k), list)
                                          for k in ("images", "annotations", "categories"))


def looks_like_coco(path: Path) -> bool:
    """Cheap test of a .json file: the first few KB mention COCO's keys."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return b'"images"' in head or b'"annotations"' in head or b'"categories"' in head


def split_name(path: Path) -> str:
    """instances_train2017.json -> train2017; train/_annotations.coco.json -> train."""
    stem = path.name.split(".")[0]
    for prefix in ("instances_", "annotations_", "_annotations"):
        stem = stem[len(prefix):] if stem.startswith(prefix) else stem
    if stem and stem not in ("", "annotations", "coco"):
        return stem
    return path.parent.name if path.parent.name.lower() in SPLIT_NAMES else "all"


def _image_folder(json_path: Path, root: Path, files: List[str], split: str) -> Path:
    """The folder the file_names are relative to: the first candidate holding the first images."""
    here, up = json_path.parent, json_path.parent.parent
    candidates = [here, root, here / "images", up / "images", up / "images" / split, up / split,
                  root / "images", root / "images" / split, root / split, up]
    probe = files[:5]
    for c in dict.fromkeys(candidates):
        if c.is_dir() and all((c / f).is_file() for f in probe):
            return c
    raise DatasetError(f"{str(json_path)!r}: can't find its images (e.g. {probe[0]!r}) in any of "
                       f"{', '.join(repr(str(c)) for c in dict.fromkeys(candidates))}")


def _field(obj, key, kind, where):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        kind_name = kind.__name__ if isinstance(kind, type) else "number"
        raise DatasetError(f"{where}: needs {key!r} ({kind_name}), got {value!r}")
    return value


def _is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def read_coco(json_path: Path, root: Path, skip_bad: bool = False):
    """One COCO file -> (records, {category id: name}, used category ids)."""
    data = load_coco_json(json_path)
    where = str(json_path)
    categories = {}
    for k, c in enumerate(data["categories"]):
        at = f"{where}: categories[{k}]"
        categories[_field(c, "id", int, at)] = str(_field(c, "name", str, at))
    by_image: Dict[int, list] = {}
    for k, a in enumerate(data["annotations"]):
        w = f"{where}: annotations[{k}]"
        image_id = _field(a, "image_id", (int, str), w)
        cat = _field(a, "category_id", int, w)
        if cat not in categories:
            raise DatasetError(
                f"{w}: category_id {cat} is not among the categories {sorted(categories)}")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_finite_number, bbox)):
            raise DatasetError(f"{w}: bbox must be [x, y, width, height] in pixels, got {bbox!r}")
        by_image.setdefault(image_id, []).append((cat, bbox, bool(a.get("iscrowd", 0))))
    images = []
    for k, im in enumerate(data["images"]):
        w = f"{where}: images[{k}]"
        images.append((_field(im, "id", (int, str), w), _field(im, "file_name", str, w)))
    if not images:
        return [], categories, set()
    folder = _image_folder(json_path, root, [f for _, f in images], split_name(json_path))
    records, used = [], set()
    for image_id, file_name in images:
        try:
            path = folder / file_name
            if not inside(path, root):
                raise DatasetError(f"{where}: file_name {file_name!r} points outside {str(root)!r}")
            info = image_info(path)
            anns = by_image.get(image_id, [])
            names = [categories[c] for c, _, _ in anns]
            pixel = [(x, y, x + bw, y + bh) for _, (x, y, bw, bh), _ in anns]
            boxes, kept = pixel_boxes_to_normalised(pixel, info.width, info.height,
                                                    f"{where} (image {file_name})", names)
            used.update(anns[k][0] for k in kept)
            rel = path.relative_to(root).with_suffix("").as_posix()  # inside root: checked above
            records.append(Record(rel, str(path),
 where, info.width, info.height, boxes,
                                  tuple(names[k] for k in kept),
                                  np.array([anns[k][2] for k in kept], bool)))
        except DatasetError as e:
            if not skip_bad:
                raise
            warnings.warn(f"skipping {file_name!r}: {e}", stacklevel=2)
    return records, categories, used


def find_coco_files(root: Path) -> List[Path]:
    """COCO JSON files of a folder: annotations/*.json, */_annotations.coco.json, *.json."""
    candidates = (sorted(root.glob("annotations/*.json"))
                  + sorted(root.glob("*/_annotations.coco.json"))
                  + sorted(root.glob("*.json")) + sorted(root.glob("*/*.coco.json")))
    return [p for p in dict.fromkeys(candidates) if looks_like_coco(p)]


def read_coco_source(paths: List[Path], root: Path, skip_bad: bool = False):
    """Several COCO files (one per split) -> ({split: [Record]}, class names, notes)."""
    splits, categories, used, notes = {}, {}, set(), []
    for p in paths:
        records, cats, used_here = read_coco(p, root, skip_bad)
        for cid, name in cats.items():
            if categories.get(cid, name) != name:
                raise DatasetError(f"{str(p)!r}: category {cid} is {name!r} here but "
                                   f"{categories[cid]!r} in another file of this dataset")
            categories[cid] = name
        used |= used_here
        name = split_name(p)
        if name in splits:
            raise DatasetError(f"{str(p)!r}: two COCO files for the split {name!r}")
        splits[name] = records
    unused = [categories[c] for c in sorted(categories) if c not in used]
    if unused:
        notes.append(f"categories without annotations left out: {unused}")
    names = [categories[c] for c in sorted(categories) if c in used]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise DatasetError(f"COCO categories repeat names: {repeated}")
    return splits, names, notes


def coco_files_for(path: Path) -> List[Path]:
    return [path] if path.is_file() else find_coco_files(path)


__all__ = ["read_coco", "read_coco_source", "find_coco_files", "coco_files_for", "load_coco_json"]
