"""YOLO txt labels: one ``<class> <cx> <cy> <w> <h>`` line per object, normalised to the image,
in a ``.txt`` file per image; class names and splits from a ``data.yaml``.

Layouts (what Roboflow and ultralytics export):
    data.yaml + train/images, train/labels, valid/images, valid/labels   (Roboflow)
    data.yaml + images/{train,val}, labels/{train,val}                     (ultralytics)
A label file is found by replacing the last ``images`` folder of the image's path with
``labels`` (ultralytics' rule), or beside the image.  An image without a label file is an image
without objects.  A line with more than four coordinates is a polygon (a segmentation export):
its bounding box is used, as ultralytics does.

data.yaml paths are resolved relative to ``path:`` (itself relative to the yaml's folder) or to
the yaml's folder.  Exports often say ``../train/images`` where ``train/images`` sits beside the
yaml; such a path is found and the substitution reported in the notes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .dataset import DatasetError, Record, pixel_boxes_to_normalised, read_text
from .images import image_info, is_image_file
from .files import inside, split_of, walk_files

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
NAME_FILES = ("classes.txt", "obj.names", "classes.names", "names.txt")


def label_path(image: Path) -> Tuple[Path, Path]:
    """(the ultralytics label path, the label path beside the image) of an image file."""
    parts = list(image.parts)
    beside = image.with_suffix(".txt")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt"), beside
    return beside, beside


def parse_label_file(path: Path, names: List[str], width: int, height: int):
    """(pixel-free normalised boxes (K, 4), class names (K,)) of one label file."""
    text = read_text(path, "label file")
    pixel, classes, seen = [], [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) < 5 or (len(fields) > 5 and len(fields) % 2 == 0):
            raise DatasetError(f"{where}: expected '<class> <cx> <cy> <w> <h>' (or a polygon "
                               f"'<class> x1 y1 x2 y2 ...'), got {line.strip()!r}")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise DatasetError(f"{where}: not a number in {line.strip()!r}") from None
        if not all(np.isfinite(values)):
            raise DatasetError(f"{where}: not finite: {line.strip()!r}")
        cls = values[0]
        if cls != int(cls) or not 0 <= cls < len(names):
            raise DatasetError(f"{where}: class {fields[0]} is not one of the {len(names)} classes "
                               f"(0..{len(names) - 1}: {names})")
        key = tuple(fields)
        if key in seen:
            warnings.warn(f"{where}: dropping a duplicate of an earlier line", stacklevel=3)
            continue
        seen.add(key)
        if len(values) == 5:
            cx, cy, w, h = values[1:]
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        else:  # polygon -> its bounding box
            xs, ys = values[1::2], values[2::2]
            box = (min(xs), min(ys), max(xs), max(ys))
        pixel.append((box[0] * width, box[1] * height, box[2] * width, box[3] * height))
        classes.append(names[int(cls)])
    boxes, kept = pixel_boxes_to_normalised(pixel, width, height, str(path), classes)
    return boxes, tuple(classes[k] for k in kept)


def read_images_labels(images: List[Path], names: List[str], root: Path,
                       skip_bad: bool = False) -> List[Record]:
    records = []
    for image in images:
        try:
            info = image_info(image)
            ultralytics, beside = label_path(image)
            label = ultralytics if ultralytics.is_file() else beside if beside.is_file() else None
            if label is None:
                boxes, classes, annotation = np.zeros((0, 4), np.float32), (), ""
            else:
                boxes, classes = parse_label_file(label, names, info.width, info.height)
                annotation = str(label)
            if inside(image, root):
                image_id = image.relative_to(root).with_suffix("").as_posix()
            else:
                image_id = str(image)
            records.append(Record(image_id, str(image), annotation, info.width, info.height, boxes,
                                  classes, np.zeros(len(boxes), bool)))
        except DatasetError as e:
            if not skip_bad:
                raise
            warnings.warn(f"skipping {str(image)!r}: {e}", stacklevel=2)
    return records


def find_yaml(folder: Path) -> Optional[Path]:
    """A data.yaml in ``folder`` (or one level down, as when an export was unzipped into a
    folder)."""
    for name in YAML_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    if len(found) == 1:
        return found[0]
    nested = sorted(p for name in YAML_NAMES for p in folder.glob(f"*/{name}"))
    return nested[0] if len(nested) == 1 else None


def _load_yaml(path: Path) -> dict:
    import yaml
    try:
        data = yaml.safe_load(read_text(path, "dataset file"))
    except yaml.YAMLError as e:
        raise DatasetError(f"cannot parse {str(path)!r}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{str(path)!r}: expected a mapping with train, val and names, "
                           f"got {type(data).__name__}")
    return data


def yaml_names(data: dict, path: Path) -> List[str]:
    names = data.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{str(path)!r}: names must map class ids 0, 1, ... to names") from None
        if keys != list(range(len(keys))):
            raise DatasetError(f"{str(path)!r}: names must number the classes "
                               f"0..{len(keys) - 1}, got ids {keys}")
        names = [names[k] if k in names else names[str(k)] for k in keys]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{str(path)!r}: needs 'names', a list of class names "
                           f"(or a mapping id: name)")
    names = [str(n) for n in names]
    if "nc" in data and data["nc"] != len(names):
        raise DatasetError(
            f"{str(path)!r}: nc is {data['nc']} but names lists {len(names)} classes")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise DatasetError(f"{str(path)!r}: names repeats {repeated}")
    return names


def _resolve(entry: str, base: Path, folder: Path, notes: list, yaml_path: Path) -> Path:
    """A path from data.yaml, found robustly: as written; without leading ../ (Roboflow's
    ``../train/images`` beside the yaml); or the trailing parts of an absolute path from the
    exporter's machine, below the yaml's folder."""
    p = Path(os.path.expanduser(entry))
    candidates = [p] if p.is_absolute() else [base / p]
    stripped = Path(*[q for q in p.parts if q != ".."]) if not p.is_absolute() else None
    if stripped is not None and stripped != p:
        candidates += [base / stripped, folder / stripped]
    if p.is_absolute():
        candidates += [folder / Path(*p.parts[-k:]) for k in (3, 2, 1) if len(p.parts) > k]
    for c in candidates:
        if c.exists():
            if c != candidates[0]:
                notes.append(f"{yaml_path.name} says {entry!r}; using {str(c)!r} (what exists)")
            return c
    raise DatasetError(f"{str(yaml_path)!r}: {entry!r} does not exist (looked for "
                       f"{', '.join(repr(str(c)) for c in dict.fromkeys(candidates))})")


def _images_of(entry: Path, root: Path) -> List[Path]:
    if entry.is_dir():
        return [f for f in walk_files(entry) if is_image_file(f)]
    if entry.suffix == ".txt":  # a list of image paths, relative to the list's folder or the root
        images = []
        for line in read_text(entry, "image list").splitlines():
            line = line.strip()
            if not line:
                continue
            p = Path(line)
            options = [p] if p.is_absolute() else [entry.parent / p, root / p]
            images.append(next((o for o in options if o.is_file()), options[0]))
        return images
    if is_image_file(entry):
        return [entry]
    raise DatasetError(
        f"{str(entry)!r} is neither a folder of images, an image list (.txt) nor an image")


def read_yolo_yaml(yaml_path: Path, skip_bad: bool = False):
    """data.yaml -> ({split: [Record]}, names, notes)."""
    data = _load_yaml(yaml_path)
    names = yaml_names(data, yaml_path)
    folder = yaml_path.parent
    notes = []
    base = folder
    if data.get("path"):
        p = Path(os.path.expanduser(str(data["path"])))
        p = p if p.is_absolute() else folder / p
        if p.is_dir():
            base = p
        else:
            notes.append(f"{yaml_path.name} says path: {data['path']!r}, which does not exist; "
                         f"using the yaml's folder")
    if "train" not in data or not data["train"]:
        raise DatasetError(
            f"{str(yaml_path)!r}: needs 'train': the training images (a folder or list)")
    splits = {}
    for key in ("train", "val", "test"):
        value = data.get(key)
        if not value:
            continue
        entries = value if isinstance(value, list) else [value]
        images = []
        for e in entries:
            images += _images_of(_resolve(str(e), base, folder, notes, yaml_path), base)
        if not images:
            raise DatasetError(f"{str(yaml_path)!r}: {key} ({value!r}) holds no images")
        splits[key] = read_images_labels(images, names, base, skip_bad)
    return splits, names, notes


def read_yolo_folder(root: Path, names: Optional[List[str]], skip_bad: bool = False):
    """A YOLO-txt export without data.yaml: labels/ beside images/ (or .txt beside each image);
    class names from a classes.txt / obj.names file, or ``names``."""
    notes = []
    if names is None:
        for name in NAME_FILES:
            found = sorted(root.glob(name)) or sorted(root.glob(f"*/{name}"))
            if found:
                lines = read_text(found[0], "class file").splitlines()
                names = [n.strip() for n in lines if n.strip()]
                notes.append(f"class names from {found[0].relative_to(root)}")
                break
    images = [f for f in walk_files(root) if is_image_file(f)]
    if names is None:
        top = -1
        for image in images:
            for label in label_path(image):
                if label.is_file():
                    for line in read_text(label, "label file").splitlines():
                        if line.split():
                            try:
                                top = max(top, int(float(line.split()[0])))
                            except ValueError:
                                pass
                    break
        names = [str(k) for k in range(top + 1)] or ["0"]
        notes.append(f"no data.yaml or classes.txt: the classes are named by their ids "
                     f"{names[0]}..{names[-1]} (give --classes to name them)")
    splits = {}
    for record in read_images_labels(images, names, root, skip_bad):
        split = split_of(Path(record.image_path).relative_to(root)) or "all"
        splits.setdefault(split, []).append(record)
    return splits, names, notes


def has_yolo_labels(root: Path) -> int:
    """How many images under root have a YOLO label file (to tell this layout from XML folders)."""
    return sum(1 for f in walk_files(root)
               if is_image_file(f) and any(p.is_file() for p in label_path(f)))
