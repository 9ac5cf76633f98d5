"""One split of a detection dataset, whatever layout it was read from.

Every reader (VOC root, VOC XML folders, YOLO txt, COCO JSON) turns its files into ``Record``s:
the image path, its size as displayed, and its boxes as normalised xyxy float32 in [0, 1] with a
class *name* each.  ``DetectionDataset`` maps the names to indices into one class list and hands
out ``Sample``s; pixels are decoded lazily, one image at a time.
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file."""


class Sample(NamedTuple):
    """One dataset item.

    image:     PIL.Image in mode "RGB" (None from ``ds.get_annotation``).
    boxes:     (M, 4) float32 normalised xyxy in [0, 1].
    labels:    (M,) int64 indices into ``ds.classes``.
    difficult: (M,) bool, VOC's ``<difficult>`` flag or COCO's ``iscrowd`` (training drops these;
               evaluation ignores them).
    id:        the image id (a VOC id, or the image's path relative to the dataset folder).
    path:      path of the image file (str).
    """

    image: Optional[object]
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    id: str
    path: str


class Record(NamedTuple):
    id: str
    image_path: str
    annotation_path: str  # the file the boxes came from ("" when an image has no label file)
    width: int            # the size the boxes are relative to (as displayed, unless exif is False)
    height: int
    boxes: np.ndarray     # (M, 4) float32 normalised xyxy
    names: tuple          # (M,) class names
    difficult: np.ndarray  # (M,) bool
    exif: bool = True     # decode with the EXIF rotation applied


def read_text(path: Union[str, os.PathLike], what: str) -> str:
    """A text file's contents; DatasetError naming the file if it is missing or not UTF-8."""
    try:
        # utf-8-sig: a BOM from Windows editors is not part of a name
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        raise DatasetError(f"{what} {os.fspath(path)!r} does not exist") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{what} {os.fspath(path)!r} is not UTF-8 text (byte {e.start}: "
                           f"{e.object[e.start:e.start + 1]!r})") from None
    except OSError as e:
        raise DatasetError(f"cannot read {what} {os.fspath(path)!r}: {e.strerror or e}") from None


def parse_classes(classes: Union[None, str, os.PathLike, Sequence[str]]) -> Optional[list]:
    """A class list from a sequence, a file with one name per line, or a comma-separated string."""
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        text = os.fspath(classes)
        if os.path.isfile(text):
            names = [line.strip() for line in read_text(text, "class file").splitlines()]
            names = [n for n in names if n and not n.startswith("#")]
            source = f"class file {text!r}"
        elif "," not in text and (text.endswith((".txt", ".names")) or os.sep in text):
            raise DatasetError(f"class file {text!r} does not exist")
        else:
            names = [n.strip() for n in text.split(",") if n.strip()]
            source = f"class string {text!r}"
    else:
        names = [str(n).strip() for n in classes]
        source = "class list"
    if not names:
        raise DatasetError(f"{source} contains no class names")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetError(f"{source} repeats class names {dupes}")
    return names


def pixel_boxes_to_normalised(boxes, width: int, height: int, where: str, names: Sequence[str]):
    """Continuous pixel xyxy boxes -> (normalised boxes (K, 4) float32, indices kept).

    Boxes are clipped to the image; one that sticks out by more than a pixel is clipped with a
    warning, and one with zero area or less than a pixel inside the image is dropped with a
    warning. ``where`` names the file in the warnings.
    """
    kept, index = [], []
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        what = f"box {k} ({names[k]!r}: x1={x0:g}, y1={y0:g}, x2={x1:g}, y2={y1:g})"
        if not (x1 > x0 and y1 > y0):
            warnings.warn(f"{where}: dropping {what}: zero or negative area", stacklevel=3)
            continue
        cx0, cx1 = np.clip([x0, x1], 0.0, width)
        cy0, cy1 = np.clip([y0, y1], 0.0, height)
        if cx1 - cx0 < 1.0 or cy1 - cy0 < 1.0:
            warnings.warn(f"{where}: dropping {what}: outside the {width}x{height} image",
                          stacklevel=3)
            continue
        if max(cx0 - x0, x1 - cx1, cy0 - y0, y1 - cy1) > 1.0:
            warnings.warn(f"{where}: clipping {what} to the {width}x{height} image", stacklevel=3)
        kept.append((cx0 / width, cy0 / height, cx1 / width, cy1 / height))
        index.append(k)
    return np.asarray(kept, dtype=np.float32).reshape(-1, 4), index


class DetectionDataset:
    """One split: ``ds[i]`` is a ``Sample`` with a decoded RGB image, ``ds.get_annotation(i)`` the
    same without decoding pixels (evaluation ground truth, statistics).

    records: ``Record``s in a fixed order.  classes: the class list (a name's index is its label);
    a record naming another class is an error naming its annotation file.
    """

    def __init__(self, records: Sequence[Record], classes: Sequence[str], split: str = "train",
                 root: Union[None, str, os.PathLike] = None, draft_size: Optional[int] = None):
        self.classes = list(classes)
        self.split = split
        self.root = None if root is None else os.fspath(root)
        self.draft_size = draft_size
        index = {n: i for i, n in enumerate(self.classes)}
        self._records, self._labels = [], []
        for r in records:
            unknown = sorted({n for n in r.names if n not in index})
            if unknown:
                raise DatasetError(f"{r.annotation_path or r.image_path}: unknown class name(s) "
                                   f"{unknown}; known classes: {self.classes}")
            self._records.append(r)
            self._labels.append(np.array([index[n] for n in r.names], dtype=np.int64))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def ids(self) -> list:
        return [r.id for r in self._records]

    @property
    def records(self) -> list:
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def image_path(self, i: int) -> str:
        return self._records[i].image_path

    def image_size(self, i: int) -> tuple:
        """(width, height) of image i as the boxes see it, from its header."""
        r = self._records[i]
        return r.width, r.height

    def load_image(self, i: int):
        """Decode image i as a PIL RGB image."""
        from .images import open_rgb
        r = self._records[i]
        return open_rgb(r.image_path, self.draft_size, exif=r.exif)

    def get_annotation(self, i: int) -> Sample:
        """Sample i without decoding its image (image=None).  Arrays are copies."""
        r = self._records[i]
        return Sample(None, r.boxes.copy(), self._labels[i].copy(), r.difficult.copy(), r.id,
                      r.image_path)

    def __getitem__(self, i: int) -> Sample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for dataset of {len(self)} images")
        return self.get_annotation(i)._replace(image=self.load_image(i))

    def subset(self, indices, split: str) -> "DetectionDataset":
        """The images at ``indices`` (in that order) as a split of their own."""
        return DetectionDataset([self._records[int(i)] for i in indices], self.classes, split,
                                self.root, self.draft_size)

    def num_boxes(self) -> int:
        return int(sum(len(r.boxes) for r in self._records))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={self.root!r}, split={self.split!r}, "
                f"images={len(self)}, classes={self.num_classes})")
