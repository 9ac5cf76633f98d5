"""Pascal VOC XML: the VOC root (``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/<split>.txt``)
and folders of images with their XML beside them or in a sibling folder.

Box convention.  VOC XML stores 1-based, inclusive pixel indices: an object covering the
first pixel column has ``xmin = 1``.  In continuous 0-based coordinates that object spans
``[xmin - 1, xmax]``, so outside the XML files every box is the normalised xyxy

    ((xmin - 1) / W, (ymin - 1) / H, xmax / W, ymax / H)      float32, in [0, 1]

with W, H the *decoded* image size (the XML ``<size>`` is only cross-checked).  The synthetic
generator writes the exact inverse of this mapping, so its boxes round-trip bit for bit.

Annotations are parsed eagerly at construction (XML + the image *header*, which is cheap and
gives the real image size); pixels are decoded lazily.  The parser is Python's ElementTree,
which expands no external entities (no XXE) and refuses entity bombs (expat's limits).
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .dataset import (DatasetError, DetectionDataset, Record, Sample, parse_classes,  # noqa: F401
                      pixel_boxes_to_normalised, read_text)
from .files import inside, split_of, walk_files
from .images import IMAGE_EXTENSIONS, image_info, is_image_file, open_rgb  # noqa: F401

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


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


def read_xml(xml_path: Union[str, os.PathLike]) -> ET.Element:
    xml_path = os.fspath(xml_path)
    try:
        return ET.parse(xml_path).getroot()
    except FileNotFoundError:
        raise DatasetError(f"annotation file {xml_path!r} does not exist") from None
    except ET.ParseError as e:
        raise DatasetError(f"cannot parse annotation file {xml_path!r}: {e}") from None
    except OSError as e:
        raise DatasetError(f"cannot read annotation file {xml_path!r}: {e.strerror or e}") from None


def xml_filename(ann: ET.Element) -> Optional[str]:
    """The XML's ``<filename>``, reduced to a bare file name: a path in it (``../../x`` or the
    labeller's ``C:\\Users\\...``) must never make us read a file outside the dataset."""
    name = (ann.findtext("filename") or "").strip().replace("\\", "/")
    name = name.rsplit("/", 1)[-1]
    return name if name not in ("", ".", "..") else None


def parse_voc_annotation(xml_path: Union[str, os.PathLike], image_path: Union[str, os.PathLike],
                         image_id: str, ann: Optional[ET.Element] = None) -> Record:
    """One VOC XML file and its image -> a Record (boxes normalised, bad boxes dropped with a
    warning)."""
    xml_path, image_path = os.fspath(xml_path), os.fspath(image_path)
    ann = read_xml(xml_path) if ann is None else ann
    size = ann.find("size")
    if size is None:
        raise DatasetError(f"{xml_path}: missing <size>")
    xml_w = _number(size, "width", xml_path, "<size>")
    xml_h = _number(size, "height", xml_path, "<size>")

    # The header gives the real size without decoding pixels; trust it over the XML.
    info = image_info(image_path)
    xml_size = (int(round(xml_w)), int(round(xml_h)))
    exif = True
    width, height = info.width, info.height
    if xml_size != (width, height):
        if xml_size == (info.stored_width, info.stored_height):
            # Labelled on the stored pixels (the tool ignored the EXIF rotation): keep them so.
            exif, width, height = False, info.stored_width, info.stored_height
        else:
            warnings.warn(f"{xml_path}: <size> says {xml_w:g}x{xml_h:g} but image "
                          f"{image_path!r} is {width}x{height}; using the image size",
                          stacklevel=3)

    pixel, names, difficult = [], [], []
    for k, obj in enumerate(ann.iter("object")):
        what = f"object {k}"
        name = _text(obj, "name", xml_path, what)
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DatasetError(f"{xml_path}: {what} ({name!r}) has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(bnd, t, xml_path, f"{what} <bndbox>")
                                  for t in ("xmin", "ymin", "xmax", "ymax"))
        diff_text = (obj.findtext("difficult") or "0").strip() or "0"
        try:
            flag = bool(int(float(diff_text)))
        except ValueError:
            raise DatasetError(
                f"{xml_path}: {what} <difficult> is not 0/1: {diff_text!r}") from None
        if xmax <= xmin or ymax <= ymin:  # a click, not a drag: nothing to learn from
            warnings.warn(f"{xml_path}: dropping {what} ({name!r}) with zero or negative area "
                          f"(xmin={xmin:g}, ymin={ymin:g}, xmax={xmax:g}, ymax={ymax:g})",
                          stacklevel=3)
            continue
        # 1-based inclusive pixel indices -> continuous [xmin - 1, xmax]
        pixel.append((xmin - 1.0, ymin - 1.0, xmax, ymax))
        names.append(name)
        difficult.append(flag)
    boxes, kept = pixel_boxes_to_normalised(pixel, width, height, xml_path, names)
    return Record(id=image_id, image_path=image_path, annotation_path=xml_path, width=width,
                  height=height, boxes=boxes, names=tuple(names[k] for k in kept),
                  difficult=np.asarray([difficult[k] for k in kept], dtype=bool).reshape(-1),
                  exif=exif)


def parse_all(items, parse, skip_bad, stacklevel=3):
    """``parse(item)`` for each item; with ``skip_bad`` an item that raises DatasetError is
    skipped with a warning (``stacklevel`` points it at the user's call) instead of raising."""
    records = []
    for item in items:
        try:
            records.append(parse(item))
        except DatasetError as e:
            if not skip_bad:
                raise
            warnings.warn(f"skipping {item!r}: {e}", stacklevel=stacklevel)
    return records


def resolve_classes(records: Sequence[Record], classes=None, root: Optional[Path] = None) -> list:
    """The class list: ``classes`` if given, else ``root/classes.txt`` if present, else the sorted
    set of names found (never a guessed list such as VOC's 20)."""
    names = parse_classes(classes)
    if names is None and root is not None and (root / "classes.txt").is_file():
        names = parse_classes(root / "classes.txt")
    if names is None:
        names = sorted({n for r in records for n in r.names})
    return list(names)


def keep_known_classes(records, classes, skip_bad):
    """Drop (with a warning) records naming unknown classes when skip_bad; else leave them to
    DetectionDataset, which raises naming the file."""
    if not skip_bad:
        return records
    known, kept = set(classes), []
    for r in records:
        unknown = sorted({n for n in r.names if n not in known})
        if unknown:
            warnings.warn(f"skipping {r.id!r}: {r.annotation_path}: unknown class name(s) "
                          f"{unknown}; known classes: {list(classes)}", stacklevel=3)
            continue
        kept.append(r)
    return kept


class VOCDataset(DetectionDataset):
    """Pascal VOC detection dataset.

    root:     folder holding JPEGImages/, Annotations/, ImageSets/Main/.
    split:    name of the id list ImageSets/Main/<split>.txt ("train", "val", "trainval", "test").
    classes:  a list of names, a path to a file with one name per line, or "a,b,c".  When None:
              root/classes.txt if it exists (the synthetic generator writes one, so train and val
              agree on the label order even if a class is absent from one split), else the sorted
              set of names found in this split (pass the list to agree across splits).
    skip_bad: skip images whose XML or image header is broken/missing (with a warning) instead of
              raising DatasetError.  A file whose header is fine but whose pixel data is truncated
              is found only when decoded (``verify_image`` decodes it up front).
    draft_size: optional JPEG draft decoding size for ``load_image`` (see ``open_rgb``).
    """

    def __init__(self, root: Union[str, os.PathLike], split: str = "train",
                 classes: Union[None, str, os.PathLike, Sequence[str]] = None,
                 skip_bad: bool = False, draft_size: Optional[int] = None):
        self.skip_bad = skip_bad
        root = Path(root)
        records = read_voc_split(root, split, skip_bad, stacklevel=4)
        names = resolve_classes(records, classes, root)
        records = keep_known_classes(records, names, skip_bad)
        super().__init__(records, names, split, root, draft_size)
        self.root = root


def read_voc_split(root: Path, split: str, skip_bad: bool = False, stacklevel: int = 3) -> list:
    """The Records of the ids in ``root/ImageSets/Main/<split>.txt`` (see ``parse_all`` for
    ``skip_bad`` and ``stacklevel``)."""
    return parse_all(read_split_ids(root, split), lambda i: read_voc_record(root, i), skip_bad,
                     stacklevel=stacklevel)


def read_voc_record(root: Path, image_id: str) -> Record:
    """The Record of one image id of a VOC root: its Annotations/ XML and its JPEGImages/ file."""
    xml_path = root / "Annotations" / f"{image_id}.xml"
    if not inside(xml_path, root):
        raise DatasetError(f"image id {image_id!r} in the split file points outside {str(root)!r}")
    ann = read_xml(xml_path)
    image_path = find_voc_image(root, image_id, xml_filename(ann))
    return parse_voc_annotation(xml_path, image_path, image_id, ann)


def read_split_ids(root: Path, split: str) -> list:
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError(f"split file {str(split_file)!r} does not exist (root={str(root)!r})")
    # VOC's per-class lists have "id  1/-1/0"; the main lists have just "id".
    lines = read_text(split_file, "split file").splitlines()
    return [line.split()[0] for line in lines if line.split()]


def find_voc_image(root: Path, image_id: str, filename: Optional[str]) -> Path:
    folder = root / "JPEGImages"
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        p = folder / (image_id + ext)
        if p.is_file():
            return p
    if filename and (folder / filename).is_file():
        return folder / filename
    raise DatasetError(f"image file {str(folder / (image_id + '.jpg'))!r} does not exist")


def is_voc_root(root: Path) -> bool:
    return (root / "Annotations").is_dir() and (root / "ImageSets" / "Main").is_dir()


# ---- folders of images with their XML --------------------------------------------------------
IMAGE_FOLDER_NAMES = ("images", "image", "imgs", "img", "jpegimages", "photos", "pictures")
XML_FOLDER_NAMES = ("annotations", "annotation", "annots", "annot", "labels", "label", "xml",
                    "xmls")


def _xml_candidates(image: Path, root: Path, siblings):
    """Where an image's XML can be: beside it, or in a sibling folder of the images folder
    (images/ -> annotations/, annots/, Annotations/, labels/, ...), matched by stem."""
    yield image.with_suffix(".xml")
    rel = image.relative_to(root)
    for i, part in enumerate(rel.parts[:-1]):
        if part.lower() in IMAGE_FOLDER_NAMES:
            base = root.joinpath(*rel.parts[:i])
            if base not in siblings:
                siblings[base] = sorted(p for p in base.iterdir()
                                        if p.is_dir() and p.name.lower() in XML_FOLDER_NAMES)
            rest = Path(*rel.parts[i + 1:]).with_suffix(".xml")
            for sibling in siblings[base]:
                yield sibling / rest


def read_xml_folder(root: Path, skip_bad: bool = False):
    """Images with VOC XML beside them or in a sibling folder, matched by file stem.

    Returns ({split: [Record]}, notes).  Splits come from folder names (train/, val/, valid/,
    test/ anywhere in the path); images outside any split folder form one split "all".
    An image without XML has no objects (labelling tools write none for an empty image).
    """
    files = walk_files(root)
    xml_files = {f for f in files if f.suffix.lower() == ".xml"}
    images = [f for f in files if is_image_file(f)]
    used_xml, pairs, no_xml, siblings = set(), [], [], {}
    for image in images:
        xml = next((c for c in _xml_candidates(image, root, siblings) if c in xml_files), None)
        if xml is None:
            no_xml.append(image)
        else:
            used_xml.add(xml)
        pairs.append((image, xml))
    notes = []
    # XML whose image has another stem: match it through its <filename> in its own folder
    by_path = {image: k for k, (image, _) in enumerate(pairs)}
    for xml in sorted(xml_files - used_xml):
        try:
            name = xml_filename(read_xml(xml))
        except DatasetError:
            name = None
        target = xml.parent / name if name else None
        if target is not None and target in by_path and pairs[by_path[target]][1] is None:
            pairs[by_path[target]] = (target, xml)
            no_xml.remove(target)
        else:
            notes.append(f"{xml}: no image with its name or its <filename> ({name}); ignored")
    if no_xml:
        shown = ", ".join(str(p.relative_to(root)) for p in no_xml[:3])
        notes.append(f"{len(no_xml)} image(s) have no XML file and count as images without objects "
                     f"({shown}{', ...' if len(no_xml) > 3 else ''})")

    def parse(pair):
        image, xml = pair
        image_id = str(image.relative_to(root).with_suffix("").as_posix())
        if xml is None:
            info = image_info(image)
            return Record(image_id, str(image), "", info.width, info.height,
                          np.zeros((0, 4), np.float32), (), np.zeros(0, bool))
        return parse_voc_annotation(xml, image, image_id)

    splits = {}
    for record in parse_all(pairs, parse, skip_bad):
        split = split_of(Path(record.image_path).relative_to(root)) or "all"
        splits.setdefault(split, []).append(record)
    return splits, notes
