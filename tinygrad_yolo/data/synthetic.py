"""A synthetic detection dataset in Pascal VOC layout: coloured shapes on smooth noisy backgrounds.

20 classes = 5 shapes x 4 colours (``SYNTHETIC_CLASSES``), 1-4 objects per image with sizes from
about 12% to 60% of the image side.  Objects may overlap, but every object keeps at least
``min_visible`` of its pixels visible.  Each box is the exact pixel extent of the drawn shape
(read back from its mask), so labels are tight by construction.

Determinism: image k of a split draws from ``np.random.default_rng([seed, split_code, k])``, so the
same arguments give byte-identical files (for a given Pillow/libjpeg build), independent of
``n_train``/``n_val`` and of generation order.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageDraw

from .voc import DatasetError

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
# Saturated, far apart in hue; backgrounds are kept low-saturation so these stand out.
COLORS = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 75, 220),
    "yellow": (235, 200, 30),
}
SYNTHETIC_CLASSES = tuple(f"{color}_{shape}" for shape in SHAPES for color in COLORS)

GENERATOR_VERSION = 1  # bump when the drawing changes, so ensure_synthetic_voc regenerates
COMPLETE_MARKER = ".synthetic_voc_complete"
PROGRESS_MARKER = ".synthetic_voc_in_progress"
_SPLIT_CODES = {"train": 0, "val": 1}


def _background(rng: np.random.Generator, size: int, difficulty: float) -> np.ndarray:
    """Smooth random colour field: a low-saturation base colour + a bicubically upsampled
    coarse grid of offsets (gradients, blobs).  Returns (size, size, 3) float32."""
    grey = rng.uniform(50, 205)
    tint = rng.uniform(-1, 1, 3) * (12 + 30 * difficulty)
    grid_n = int(rng.integers(2, 6))
    # Mostly brightness variation (shared by the channels), little colour: keeps shapes salient.
    lum = rng.normal(0, 20 + 25 * difficulty, (grid_n, grid_n, 1))
    chroma = rng.normal(0, 5 + 20 * difficulty, (grid_n, grid_n, 3))
    grid = grey + tint + lum + chroma
    # PIL "F" images hold one float channel; upsample each channel separately.
    channels = [np.asarray(Image.fromarray(grid[:, :, c].astype(np.float32), "F")
                           .resize((size, size), Image.BICUBIC))
                for c in range(3)]
    return np.stack(channels, axis=2)


def _shape_mask(shape: str, size: int, x0: int, y0: int, x1: int, y1: int) -> Image.Image:
    """An L-mode mask of `shape` inscribed in the pixel box [x0, x1) x [y0, y1)."""
    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)
    r, b = x1 - 1, y1 - 1  # ImageDraw takes inclusive pixel coordinates
    xc, yc = (x0 + r) / 2, (y0 + b) / 2
    if shape == "circle":
        d.ellipse([x0, y0, r, b], fill=255)
    elif shape == "square":
        d.rectangle([x0, y0, r, b], fill=255)
    elif shape == "triangle":
        d.polygon([(x0, b), (r, b), (xc, y0)], fill=255)
    elif shape == "diamond":
        d.polygon([(xc, y0), (r, yc), (xc, b), (x0, yc)], fill=255)
    elif shape == "cross":
        tw, th = (x1 - x0) / 3, (y1 - y0) / 3  # bar thickness: a third of the box
        d.rectangle([x0, round(yc - th / 2), r, round(yc + th / 2)], fill=255)
        d.rectangle([round(xc - tw / 2), y0, round(xc + tw / 2), b], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return mask


def render_image(
    rng: np.random.Generator,
    img_size: int = 160,
    difficulty: float = 0.5,
    max_objects: int = 4,
    min_size: float = 0.12,
    max_size: float = 0.6,
    min_visible: float = 0.7,
):
    """Draw one image.  Returns (PIL RGB image, pixel boxes [(x0, y0, x1, y1)] with exclusive
    right/bottom edges, class indices into SYNTHETIC_CLASSES)."""
    canvas = _background(rng, img_size, difficulty)
    owner = np.full((img_size, img_size), -1, dtype=np.int16)  # which object each pixel shows
    areas, classes = [], []
    n_objects = int(rng.integers(1, max_objects + 1))
    for _ in range(n_objects):
        cls = int(rng.integers(len(SYNTHETIC_CLASSES)))
        shape = SHAPES[cls // len(COLORS)]
        base_color = np.array(COLORS[list(COLORS)[cls % len(COLORS)]], dtype=np.float32)
        for _attempt in range(20):  # rejection-sample a placement that hides no object too much
            side = np.exp(rng.uniform(np.log(min_size), np.log(max_size)))  # log-uniform sqrt(w*h)
            aspect = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
            w = int(np.clip(round(side * np.sqrt(aspect) * img_size), 4, img_size - 1))
            h = int(np.clip(round(side / np.sqrt(aspect) * img_size), 4, img_size - 1))
            x0 = int(rng.integers(0, img_size - w + 1))
            y0 = int(rng.integers(0, img_size - h + 1))
            m = np.asarray(_shape_mask(shape, img_size, x0, y0, x0 + w, y0 + h)) > 0
            covered = owner[m]
            visible = [np.count_nonzero(owner == j) - np.count_nonzero(covered == j)
                       for j in range(len(areas))]
            if all(visible[j] >= min_visible * areas[j] for j in range(len(areas))):
                break
        else:
            continue  # no acceptable placement: fewer objects in this image
        color = base_color * rng.uniform(1 - 0.15 * difficulty, 1 + 0.1 * difficulty)
        color = color + rng.uniform(-1, 1, 3) * (8 + 25 * difficulty)
        canvas[m] = color
        owner[m] = len(areas)
        areas.append(int(m.sum()))
        classes.append(cls)

    noise = rng.standard_normal(canvas.shape, dtype=np.float32) * (2 + 10 * difficulty)
    pixels = np.clip(canvas + noise, 0, 255).round().astype(np.uint8)
    boxes = []
    for j in range(len(classes)):
        ys, xs = np.nonzero(owner == j)  # the visible pixels: occluded parts don't stretch the box
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return Image.fromarray(pixels, "RGB"), boxes, classes


def _annotation_xml(image_id: str, img_size: int, boxes, classes) -> bytes:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = "synthetic"
    ET.SubElement(ann, "filename").text = f"{image_id}.jpg"
    ET.SubElement(ET.SubElement(ann, "source"), "database").text = "tinygrad_yolo synthetic shapes"
    size = ET.SubElement(ann, "size")
    for tag, value in (("width", img_size), ("height", img_size), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(ann, "segmented").text = "0"
    for (x0, y0, x1, y1), cls in zip(boxes, classes):
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = SYNTHETIC_CLASSES[cls]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        # continuous [x0, x1) -> VOC's 1-based inclusive pixel indices (inverse of voc.py's mapping)
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(bnd, tag).text = str(value)
    ET.indent(ann)
    return ET.tostring(ann, encoding="utf-8", xml_declaration=False) + b"\n"


def _params(n_train, n_val, img_size, seed, difficulty, max_objects, min_size, max_size,
            quality) -> dict:
    return {
        "version": GENERATOR_VERSION, "n_train": int(n_train), "n_val": int(n_val),
        "img_size": int(img_size), "seed": int(seed), "difficulty": float(difficulty),
        "max_objects": int(max_objects), "min_size": float(min_size), "max_size": float(max_size),
        "quality": int(quality),
    }


def generate_synthetic_voc(
    root: Union[str, os.PathLike],
    n_train: int = 2000,
    n_val: int = 400,
    img_size: int = 160,
    seed: int = 0,
    difficulty: float = 0.5,
    max_objects: int = 4,
    min_size: float = 0.12,
    max_size: float = 0.6,
    quality: int = 90,
) -> Path:
    """Write a VOC-layout dataset of coloured shapes under `root` and return root as a Path.

    Files: JPEGImages/<id>.jpg, Annotations/<id>.xml, ImageSets/Main/{train,val,trainval}.txt,
    classes.txt, and a completion marker written last.  Ids are 6-digit numbers, train first.
    difficulty in [0, 1] scales background contrast, pixel noise and colour jitter (all levels
    stay easy to tell apart by eye).  Refuses to write into a non-empty folder it didn't create.
    """
    _check_arguments(n_train, n_val, img_size, seed, difficulty, max_objects, min_size, max_size)
    root = Path(root)
    params = _params(n_train, n_val, img_size, seed, difficulty, max_objects, min_size, max_size,
                     quality)
    _claim_folder(root)
    _start_writing(root, params)

    splits = {"train": [], "val": []}
    next_id = 0
    for split, count in (("train", n_train), ("val", n_val)):
        for k in range(count):
            rng = np.random.default_rng([seed, _SPLIT_CODES[split], k])
            image, boxes, classes = render_image(rng, img_size, difficulty, max_objects, min_size,
                                                 max_size)
            image_id = f"{next_id:06d}"
            next_id += 1
            image.save(root / "JPEGImages" / f"{image_id}.jpg", "JPEG", quality=quality)
            xml = _annotation_xml(image_id, img_size, boxes, classes)
            (root / "Annotations" / f"{image_id}.xml").write_bytes(xml)
            splits[split].append(image_id)

    main = root / "ImageSets" / "Main"
    for split, ids in splits.items():
        (main / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
    (main / "trainval.txt").write_text("".join(i + "\n" for i in splits["train"] + splits["val"]))
    (root / "classes.txt").write_text("".join(c + "\n" for c in SYNTHETIC_CLASSES))
    (root / COMPLETE_MARKER).write_text(json.dumps(params, sort_keys=True) + "\n")
    (root / PROGRESS_MARKER).unlink()
    return root


def _check_arguments(n_train, n_val, img_size, seed, difficulty, max_objects, min_size, max_size):
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    if not 0 < min_size <= max_size < 1:
        raise ValueError(f"need 0 < min_size <= max_size < 1, got {min_size}, {max_size}")
    if img_size < 32:
        raise ValueError(f"img_size must be >= 32 pixels, got {img_size}")
    if n_train < 0 or n_val < 0 or seed < 0 or max_objects < 1:
        raise ValueError("n_train, n_val and seed must be >= 0 and max_objects >= 1")


def _start_writing(root: Path, params: dict) -> None:
    """Mark the folder as ours and unfinished before touching anything else, then lay out
    empty VOC folders."""
    (root / COMPLETE_MARKER).unlink(missing_ok=True)
    (root / PROGRESS_MARKER).write_text(json.dumps(params) + "\n")
    for sub in ("JPEGImages", "Annotations", "ImageSets"):
        shutil.rmtree(root / sub, ignore_errors=True)  # stale files of an earlier, bigger run
    (root / "JPEGImages").mkdir()
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)


def _claim_folder(root: Path) -> None:
    """Create root, or check it is empty or one of ours, so we never overwrite a real dataset."""
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{str(root)!r} exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    ours = (root / COMPLETE_MARKER).exists() or (root / PROGRESS_MARKER).exists()
    if not ours and any(root.iterdir()):
        raise DatasetError(f"refusing to generate a synthetic dataset into non-empty folder "
                           f"{str(root)!r} that was not made by generate_synthetic_voc")


def is_complete(root: Union[str, os.PathLike], **kwargs) -> bool:
    """True if `root` holds a finished synthetic dataset made with these generation arguments."""
    root = Path(root)
    marker = root / COMPLETE_MARKER
    if not marker.is_file() or (root / PROGRESS_MARKER).exists():
        return False
    try:
        stored = json.loads(marker.read_text())
    except ValueError:
        return False
    args = inspect.signature(generate_synthetic_voc).bind(root, **kwargs)
    args.apply_defaults()
    if stored != _params(**{k: v for k, v in args.arguments.items() if k != "root"}):
        return False
    # Cheap sanity check that the files are still there: the split lists and the last image.
    main = root / "ImageSets" / "Main"
    last = f"{stored['n_train'] + stored['n_val'] - 1:06d}"
    needed = [main / "train.txt", main / "val.txt", root / "classes.txt"]
    if stored["n_train"] + stored["n_val"] > 0:
        needed += [root / "JPEGImages" / f"{last}.jpg", root / "Annotations" / f"{last}.xml"]
    return all(p.is_file() for p in needed)


def ensure_synthetic_voc(root: Union[str, os.PathLike], **kwargs) -> Path:
    """Generate the synthetic dataset into `root` unless a complete one with the same arguments
    (see ``generate_synthetic_voc``) is already there; an interrupted generation is redone."""
    root = Path(root)
    if not is_complete(root, **kwargs):
        generate_synthetic_voc(root, **kwargs)
    return root
