"""Detections for image files, folders and globs, saved beside annotated copies.

Outputs mirror the inputs' relative paths under the output folder (``a/x.jpg`` and ``b/x.jpg``
stay two files), each picture with a JSON file of its detections; ``detections.json`` holds
them all, and ``labels/<path>.txt`` YOLO-txt lines (class cx cy w h score) when asked.

The score of a detection is p(class) x confidence, as in the paper: both are linear outputs of
the network (clipped at 0), so a score is usually in [0, 1] but can exceed 1.
"""
import glob
import json
import os
from pathlib import Path

import numpy as np

from ..data import DatasetError, EvalTransform, open_rgb
from ..data.images import is_image_file
from ..data.files import walk_files
from ..detection import postprocess
from .evaluate import predict


def collect_images(sources):
    """[(image path, path relative to the output folder)] for files, folders and glob patterns."""
    found = []
    for source in sources:
        source = os.path.expanduser(str(source))
        p = Path(source)
        if p.is_dir():
            images = [f for f in walk_files(p) if is_image_file(f)]
            if not images:
                raise DatasetError(f"{p}: a folder without images")
            found += [(f, Path(p.name) / f.relative_to(p)) for f in images]
        elif p.is_file():
            found.append((p, None))
        elif glob.has_magic(source):
            matches = sorted(Path(m) for m in glob.glob(source, recursive=True)
                             if is_image_file(m) and Path(m).is_file())
            if not matches:
                raise DatasetError(f"{source}: no image matches this pattern")
            found += [(m, None) for m in matches]
        else:
            raise DatasetError(f"{source}: no such image, folder or pattern")
    loose = [f for f, rel in found if rel is None]
    if loose:  # single files: relative to their common folder, so equal names elsewhere stay apart
        common = Path(os.path.commonpath([str(f.resolve().parent) for f in loose]))
        found = [(f, rel if rel is not None else f.resolve().relative_to(common))
                 for f, rel in found]
    seen, out = set(), []
    for f, rel in found:
        key = str(f.resolve())
        if key not in seen:
            seen.add(key)
            out.append((f, rel))
    return out


class ModelDetector:
    """A YOLOv1 on ``device`` with the interface of export's ``OnnxDetector`` (``img_size`` and
    ``detect``), so that ``detect`` runs a checkpoint and an exported file through one path."""

    def __init__(self, model, device="cpu"):
        self.model, self.device, self.img_size = model, device, model.img_size

    def detect(self, images, conf_threshold=0.25, iou_threshold=0.5):
        m = self.model
        return postprocess(predict(m, images, self.device), S=m.S, B=m.B, C=m.C,
                           conf_threshold=conf_threshold, iou_threshold=iou_threshold)


def detect(model, classes, images, out_dir, device="cpu", conf_threshold=0.25, iou_threshold=0.5,
           save_txt=False):
    """Detect objects with ``model`` (a YOLOv1, run on ``device``, or anything with ``img_size``
    and ``detect(images, conf_threshold, iou_threshold)``, as export's ``OnnxDetector``) in
    ``images``, collect_images' list; returns the JSON-able results and writes the annotated
    copies, per-image JSON (and YOLO txt) under ``out_dir``."""
    out_dir = Path(out_dir)
    detector = model if callable(getattr(model, "detect", None)) else ModelDetector(model, device)
    transform, results = EvalTransform(detector.img_size), []
    empty_boxes, empty_labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    for path, rel in images:
        image = open_rgb(path)
        x = transform(image, empty_boxes, empty_labels).image[None]
        det = detector.detect(x, conf_threshold=conf_threshold, iou_threshold=iou_threshold)[0]
        record = save_detections(image, det, classes, path, out_dir / rel)
        if save_txt:
            txt = out_dir / "labels" / rel.with_suffix(".txt")
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text("".join(f"{int(c)} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
                                   f"{x2 - x1:.6f} {y2 - y1:.6f} {s:.4f}\n"
                                   for x1, y1, x2, y2, s, c in det))
        results.append(record)
    (out_dir / "detections.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def save_detections(image, det, classes, path, target):
    """The annotated copy of ``image`` at ``target`` and the JSON of its detections beside it;
    returns that record (boxes in the image's pixels)."""
    from ..viz import draw_detections
    W, H = image.size
    target.parent.mkdir(parents=True, exist_ok=True)
    picture = draw_detections(image, det, classes)
    if target.suffix.lower() in (".jpg", ".jpeg"):
        picture.save(target, quality=92)
    else:
        picture.save(target)
    record = {"image": str(path), "output": str(target), "width": W, "height": H, "detections": [
        {"class": classes[int(c)], "class_id": int(c), "score": round(float(s), 4),
         "box": [round(float(x1 * W), 1), round(float(y1 * H), 1), round(float(x2 * W), 1),
                 round(float(y2 * H), 1)]}
        for x1, y1, x2, y2, s, c in det]}
    target.with_suffix(target.suffix + ".json").write_text(json.dumps(record, indent=2) + "\n")
    return record
