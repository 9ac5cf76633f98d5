"""Pascal VOC reader: ``root/{JPEGImages, Annotations, ImageSets/Main/<split>.txt}``.

Annotations are parsed eagerly at construction (XML + the image *header*, which is cheap and
gives the real image size); pixels are decoded lazily by ``ds[i]`` / ``ds.load_image(i)``.

Box convention.  VOC XML stores 1-based, inclusive pixel indices: an object covering the
first pixel column has ``xmin = 1``.  In continuous 0-based coordinates that object spans
``[xmin - 1, xmax]``, so outside the XML files every box is the normalised xyxy

    ((xmin - 1) / W, (ymin - 1) / H, xmax / W, ymax / H)      float32, in [0, 1]

with W, H the *decoded* image size (the XML ``<size>`` is only cross-checked).  The synthetic
generator writes the exact inverse of this mapping, so its boxes round-trip bit for bit.
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
from PIL import Image

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")

# Fully transparent pixels of RGBA/LA/palette images are composited onto this grey: their stored
# colour is arbitrary (often black), and a neutral grey is what the augmentation pads with too.
ALPHA_BACKGROUND = (127, 127, 127)


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file."""


class Sample(NamedTuple):
    """One dataset item.

    image:     PIL.Image in mode "RGB" (None from ``ds.get_annotation``).
    boxes:     (M, 4) float32 normalised xyxy in [0, 1].
    labels:    (M,) int64 indices into ``ds.classes``.
    difficult: (M,) bool, VOC's ``<difficult>`` flag (training drops these; evaluation ignores them).
    id:        the image id from the split file.
    path:      path of the image file (str).
    """

    image: Optional[Image.Image]
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    id: str
    path: str


class _Record(NamedTuple):
    id: str
    image_path: str
    xml_path: str
    width: int  # true image size, from the image header
    height: int
    boxes: np.ndarray  # (M, 4) float32 normalised
    names: tuple  # (M,) class names, resolved to labels once the class list is known
    difficult: np.ndarray  # (M,) bool


def parse_classes(classes: Union[None, str, os.PathLike, Sequence[str]]) -> Optional[list]:
    """A class list from a sequence, a file with one name per line, or a comma-separated string."""
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        text = os.fspath(classes)
        if os.path.isfile(text):
            with open(text, encoding="utf-8") as f:
                names = [line.strip() for line in f]
            names = [n for n in names if n and not n.startswith("#")]
            source = f"class file {text!r}"
        elif "," not in text and (text.endswith(".txt") or os.sep in text):
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


def open_rgb(path: Union[str, os.PathLike], draft_size: Optional[int] = None) -> Image.Image:
    """Decode an image file to an RGB PIL image, whatever its mode; DatasetError names the file.

    draft_size: let the JPEG decoder downscale by 1/2, 1/4, 1/8 while both sides stay >= draft_size
    (several times faster for big photos; boxes are normalised, so they are unaffected).
    """
    try:
        with Image.open(path) as img:
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.load()
            return _to_rgb(img)
    except FileNotFoundError:
        raise DatasetError(f"image file {os.fspath(path)!r} does not exist") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises all three for bad files
        raise DatasetError(f"cannot decode image {os.fspath(path)!r}: {e}") from e


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        # 16-bit/32-bit grey: PIL's convert("RGB") clips at 255, so rescale to 8 bits ourselves.
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(a.max()), 255.0)
        a8 = np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(np.repeat(a8[:, :, None], 3, axis=2), "RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, ...


def _text(node: ET.Element, tag: str, xml_path: str, what: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{xml_path}: {what} has no <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, xml_path: str, what: str) -> float:
    text = _text(node, tag, xml_path, what)
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{xml_path}: {what} <{tag}> is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise DatasetError(f"{xml_path}: {what} <{tag}> is not finite: {text!r}")
    return value


class VOCDataset:
    """Pascal VOC detection dataset.

    root:     folder holding JPEGImages/, Annotations/, ImageSets/Main/.
    split:    name of the id list ImageSets/Main/<split>.txt ("train", "val", "trainval", "test").
    classes:  a list of names, a path to a file with one name per line, or "a,b,c".  When None:
              root/classes.txt if it exists (the synthetic generator writes one, so train and val
              agree on the label order even if a class is absent from one split), else VOC_CLASSES
              when the annotations use only those names, else the sorted set of names found.
    skip_bad: skip images whose XML or image header is broken/missing (with a warning) instead of
              raising DatasetError.  A file whose header is fine but whose pixel data is truncated
              is only detected when decoded, and then always raises DatasetError.
    draft_size: optional JPEG draft decoding size for ``load_image`` (see ``open_rgb``).

    ``ds[i]`` returns a ``Sample`` whose image is a PIL RGB image; ``ds.get_annotation(i)`` the
    same without decoding pixels (for evaluation ground truth).
    """

    def __init__(
        self,
        root: Union[str, os.PathLike],
        split: str = "train",
        classes: Union[None, str, os.PathLike, Sequence[str]] = None,
        skip_bad: bool = False,
        draft_size: Optional[int] = None,
    ):
        self.root = Path(root)
        self.split = split
        self.skip_bad = skip_bad
        self.draft_size = draft_size
        ids = self._read_split()

        records = []
        for image_id in ids:
            try:
                records.append(self._parse(image_id))
            except DatasetError as e:
                if not skip_bad:
                    raise
                warnings.warn(f"skipping {image_id!r}: {e}", stacklevel=2)

        names = parse_classes(classes)
        if names is None and (self.root / "classes.txt").is_file():
            names = parse_classes(self.root / "classes.txt")
        if names is None:
            found = {n for r in records for n in r.names}
            names = list(VOC_CLASSES) if found <= set(VOC_CLASSES) else sorted(found)
        self.classes = list(names)
        index = {n: i for i, n in enumerate(self.classes)}

        self._records = []
        self._labels = []
        for r in records:
            unknown = sorted({n for n in r.names if n not in index})
            if unknown:
                msg = f"{r.xml_path}: unknown class name(s) {unknown}; known classes: {self.classes}"
                if not skip_bad:
                    raise DatasetError(msg)
                warnings.warn(f"skipping {r.id!r}: {msg}", stacklevel=2)
                continue
            self._records.append(r)
            self._labels.append(np.array([index[n] for n in r.names], dtype=np.int64))

    # ---- construction helpers -------------------------------------------------------------
    def _read_split(self) -> list:
        split_file = self.root / "ImageSets" / "Main" / f"{self.split}.txt"
        if not split_file.is_file():
            raise DatasetError(f"split file {str(split_file)!r} does not exist (root={str(self.root)!r})")
        ids = []
        with open(split_file, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                # VOC's per-class lists have "id  1/-1/0"; the main lists have just "id".
                if parts:
                    ids.append(parts[0])
        return ids

    def _find_image(self, image_id: str, xml_filename: Optional[str]) -> Path:
        folder = self.root / "JPEGImages"
        for ext in IMAGE_EXTENSIONS:
            p = folder / (image_id + ext)
            if p.is_file():
                return p
        if xml_filename:
            p = folder / xml_filename
            if p.is_file():
                return p
        raise DatasetError(f"image file {str(folder / (image_id + '.jpg'))!r} does not exist")

    def _parse(self, image_id: str) -> _Record:
        xml_path = str(self.root / "Annotations" / f"{image_id}.xml")
        try:
            tree = ET.parse(xml_path)
        except FileNotFoundError:
            raise DatasetError(f"annotation file {xml_path!r} does not exist") from None
        except ET.ParseError as e:
            raise DatasetError(f"cannot parse annotation file {xml_path!r}: {e}") from None
        ann = tree.getroot()
        size = ann.find("size")
        if size is None:
            raise DatasetError(f"{xml_path}: missing <size>")
        xml_w = _number(size, "width", xml_path, "<size>")
        xml_h = _number(size, "height", xml_path, "<size>")
        filename = ann.findtext("filename")
        image_path = self._find_image(image_id, filename.strip() if filename else None)

        # The header gives the real size without decoding pixels; trust it over the XML.
        try:
            with Image.open(image_path) as img:
                width, height = img.size
        except (OSError, SyntaxError, ValueError) as e:
            raise DatasetError(f"cannot read image {str(image_path)!r}: {e}") from e
        if (int(round(xml_w)), int(round(xml_h))) != (width, height):
            warnings.warn(
                f"{xml_path}: <size> says {xml_w:g}x{xml_h:g} but image {str(image_path)!r} is "
                f"{width}x{height}; using the image size",
                stacklevel=3,
            )

        boxes, names, difficult = [], [], []
        for k, obj in enumerate(ann.iter("object")):
            what = f"object {k}"
            name = _text(obj, "name", xml_path, what)
            bnd = obj.find("bndbox")
            if bnd is None:
                raise DatasetError(f"{xml_path}: {what} ({name!r}) has no <bndbox>")
            xmin, ymin, xmax, ymax = (_number(bnd, t, xml_path, f"{what} <bndbox>")
                                      for t in ("xmin", "ymin", "xmax", "ymax"))
            diff_text = (obj.findtext("difficult") or "0").strip()
            if xmax <= xmin or ymax <= ymin:
                warnings.warn(f"{xml_path}: dropping {what} ({name!r}) with zero or negative area "
                              f"(xmin={xmin:g}, ymin={ymin:g}, xmax={xmax:g}, ymax={ymax:g})", stacklevel=3)
                continue
            # 1-based inclusive pixel indices -> continuous [xmin - 1, xmax], clipped to the image.
            x0, x1 = np.clip([xmin - 1.0, xmax], 0.0, width)
            y0, y1 = np.clip([ymin - 1.0, ymax], 0.0, height)
            if x1 - x0 < 1.0 or y1 - y0 < 1.0:  # less than one pixel left inside the image
                warnings.warn(f"{xml_path}: dropping {what} ({name!r}) outside the {width}x{height} image "
                              f"(xmin={xmin:g}, ymin={ymin:g}, xmax={xmax:g}, ymax={ymax:g})", stacklevel=3)
                continue
            boxes.append((x0 / width, y0 / height, x1 / width, y1 / height))
            names.append(name)
            try:
                difficult.append(bool(int(float(diff_text))))
            except ValueError:
                raise DatasetError(f"{xml_path}: {what} <difficult> is not 0/1: {diff_text!r}") from None

        return _Record(
            id=image_id,
            image_path=str(image_path),
            xml_path=xml_path,
            width=width,
            height=height,
            boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            names=tuple(names),
            difficult=np.asarray(difficult, dtype=bool).reshape(-1),
        )

    # ---- public API -----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def ids(self) -> list:
        return [r.id for r in self._records]

    def __len__(self) -> int:
        return len(self._records)

    def image_path(self, i: int) -> str:
        return self._records[i].image_path

    def image_size(self, i: int) -> tuple:
        """(width, height) of image i, from its header."""
        r = self._records[i]
        return r.width, r.height

    def load_image(self, i: int) -> Image.Image:
        """Decode image i as a PIL RGB image."""
        return open_rgb(self._records[i].image_path, self.draft_size)

    def get_annotation(self, i: int) -> Sample:
        """Sample i without decoding its image (image=None).  Arrays are copies."""
        r = self._records[i]
        return Sample(None, r.boxes.copy(), self._labels[i].copy(), r.difficult.copy(), r.id, r.image_path)

    def __getitem__(self, i: int) -> Sample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for dataset of {len(self)} images")
        return self.get_annotation(i)._replace(image=self.load_image(i))

    def __repr__(self) -> str:
        return (f"VOCDataset(root={str(self.root)!r}, split={self.split!r}, images={len(self)}, "
                f"classes={self.num_classes})")
