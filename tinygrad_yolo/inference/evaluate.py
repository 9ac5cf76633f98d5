"""Evaluation: the network's detections on a split, scored with the VOC devkit's rule and
with COCO's.

``evaluate`` returns plain numbers for JSON (VOC mAP@0.5 all-point and 11-point, COCO
mAP@[.5:.95] and mAP@0.5 at 101 recalls, per-class APs, instances, precision and recall at the
display threshold) and, under ``"curves"``, the arrays the report draws (per-class
precision-recall curves, the confusion matrix). COCO's numbers are computed at every
validation: they cost less than the VOC ones.
"""
import math

import numpy as np

from ..backend import to_numpy
from ..data import DataLoader, EvalTransform
from ..detection import (coco_average_precision, confusion_matrix, mean_average_precision,
                         postprocess)
from ..function import no_grad
from ..tensor import Tensor

EVAL_CONF = 0.005     # low: low-scoring detections still add recall to the AP
DISPLAY_CONF = 0.25   # what `detect` shows; precision, recall and the confusion matrix use it


class EvaluationStopped(Exception):
    """``stop()`` said to stop (a signal arrived) before the evaluation finished."""


def predict(model, images, device="cpu"):
    """Raw network output (N, S, S, B*5+C) as a NumPy array, in eval mode."""
    was_training = model.training
    model.eval()
    with no_grad():
        out = to_numpy(model(Tensor(images, device=device)).data)
    model.train(was_training)
    return out


def detect_split(model, dataset, device="cpu", batch_size=32, workers=2, max_images=None, stop=None,
                 progress=None, conf_threshold=EVAL_CONF, iou_threshold=0.5):
    """(detections, ground truths (M, 5), difficult flags) per image of ``dataset``."""
    S, B, C, size = model.S, model.B, model.C, model.img_size
    loader = DataLoader(dataset, batch_size, EvalTransform(size), shuffle=False,
                        num_workers=workers)
    detections, truths, difficult = [], [], []
    for batch in loader:
        if stop is not None and stop():
            raise EvaluationStopped()
        out = predict(model, batch.images, device)
        detections += postprocess(out, S=S, B=B, C=C, conf_threshold=conf_threshold,
                                  iou_threshold=iou_threshold)
        for boxes, labels, dif in zip(batch.boxes, batch.labels, batch.difficult):
            truths.append(np.concatenate([boxes, labels[:, None].astype(np.float32)], axis=1))
            difficult.append(dif)
        if progress is not None:
            progress(len(batch.images))
        if max_images and len(truths) >= max_images:
            break
    return detections, truths, difficult


def _nan_to_none(values):
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            for v in values]


def _number(value):
    return None if math.isnan(value) else float(value)


def score(detections, truths, difficult, num_classes):
    """The metrics dict of a split's detections (see the module docstring)."""
    all_point = mean_average_precision(detections, truths, num_classes, 0.5, "all-point", difficult)
    eleven = mean_average_precision(detections, truths, num_classes, 0.5, "11-point", difficult)
    coco = coco_average_precision(detections, truths, num_classes, difficult)
    precision, recall = [], []
    for c in range(num_classes):
        shown = all_point["scores"][c] >= DISPLAY_CONF
        if all_point["n_pos"][c] == 0:
            precision.append(None), recall.append(None)
        elif not shown.any():
            precision.append(0.0), recall.append(0.0)
        else:
            k = int(np.nonzero(shown)[0][-1])  # the curve's point at the display threshold
            precision.append(float(all_point["precision"][c][k]))
            recall.append(float(all_point["recall"][c][k]))
    return {
        "map50": _number(all_point["map"]),
        "map50_11pt": _number(eleven["map"]),
        "map50_95": _number(coco["map"]),      # COCO mAP@[.5:.95]: ultralytics' mAP50-95
        "map50_coco": _number(coco["map50"]),  # COCO mAP@0.5 (101 recalls): ultralytics' mAP50
        "ap": _nan_to_none(all_point["ap"].tolist()),
        "ap_11pt": _nan_to_none(eleven["ap"].tolist()),
        "ap50_95": _nan_to_none(coco["ap"].tolist()),
        "ap50_coco": _nan_to_none(coco["ap50"].tolist()),
        "instances": [int(n) for n in all_point["n_pos"]],
        "images_with": [sum(1 for t, d in zip(truths, difficult)
                            if np.any((t[:, 4] == c) & ~np.asarray(d, bool)))
                        for c in range(num_classes)],
        "precision": precision,
        "recall": recall,
        "images": len(truths),
        "curves": {"recall": all_point["recall"], "precision": all_point["precision"],
                   "confusion": confusion_matrix(detections, truths, num_classes, DISPLAY_CONF, 0.5,
                                                 difficult)},
    }


def evaluate(model, dataset, device="cpu", batch_size=32, max_images=None, workers=2, stop=None,
             progress=None):
    """VOC mAP@0.5 (both interpolations), COCO's mAPs and the per-class figures of ``model`` on
    ``dataset``."""
    detections, truths, difficult = detect_split(model, dataset, device, batch_size, workers,
                                                 max_images, stop, progress)
    return score(detections, truths, difficult, model.C)
