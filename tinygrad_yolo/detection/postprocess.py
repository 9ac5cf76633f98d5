"""Network output -> detections: decode the grid, then per-class NMS.

A detection is a row [x1, y1, x2, y2, score, class] with xyxy normalised to
[0, 1]. Everything here runs on the host in NumPy (outputs are small).
"""
import numpy as np

from ..backend import is_cuda_array, to_numpy
from .boxes import box_iou


def _as_grid(output, S, B, C):
    """Return (N, S, S, B*5+C) float64 and whether the input was a single image."""
    if hasattr(output, "numpy") and not is_cuda_array(output):  # a Tensor
        output = output.numpy()
    output = np.asarray(to_numpy(output), dtype=np.float64)
    single = output.ndim == 3
    if single:
        output = output[None]
    if output.ndim != 4 or output.shape[1:] != (S, S, B * 5 + C):
        raise ValueError(f"decode: expected output of shape (N, {S}, {S}, {B * 5 + C}) or "
                         f"({S}, {S}, {B * 5 + C}) for S={S}, B={B}, C={C}, got {output.shape}")
    return output, single


def decode(output, conf_threshold=0.01, S=7, B=2, C=20):
    """Turn raw outputs into detections, one (K, 6) array per image.

    Every (box, class) pair whose class-specific score p(c) * conf exceeds
    ``conf_threshold`` becomes a row, as in the paper and darknet: one box can
    thus appear once per class, and per-class NMS sorts it out later.

    Class scores: the loss trains them by squared error against a one-hot
    vector, so the raw score already estimates Pr(class | object); a softmax
    would change their ranking across boxes (it depends on the other classes'
    scores) and is not what the paper does. Outputs are linear, so negative
    confidences and class scores are clipped to 0 before the product.

    Rows come sorted by descending score. A batched input (N, S, S, D) returns a
    list of N arrays; a single (S, S, D) grid returns one array.
    """
    grid, single = _as_grid(output, S, B, C)
    N = grid.shape[0]
    preds = grid[..., :B * 5].reshape(N, S, S, B, 5)
    probs = np.clip(grid[..., B * 5:], 0, None)                      # (N, S, S, C)
    conf = np.clip(preds[..., 4], 0, None)                           # (N, S, S, B)

    rows = np.arange(S).reshape(1, S, 1, 1)
    cols = np.arange(S).reshape(1, 1, S, 1)
    cx = (cols + preds[..., 0]) / S
    cy = (rows + preds[..., 1]) / S
    w, h = preds[..., 2] ** 2, preds[..., 3] ** 2  # the net predicts sqrt(w), sqrt(h)
    xyxy = np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1), 0, 1)

    scores = conf[..., None] * probs[..., None, :]                   # (N, S, S, B, C)
    results = []
    for n in range(N):
        box_idx, cls = np.nonzero(scores[n].reshape(S * S * B, C) > conf_threshold)
        s = scores[n].reshape(S * S * B, C)[box_idx, cls]
        det = np.concatenate([xyxy[n].reshape(S * S * B, 4)[box_idx], s[:, None], cls[:, None]],
                             axis=1)
        results.append(det[np.argsort(-s, kind="stable")].astype(np.float32))
    return results[0] if single else results


def _check_nms_inputs(boxes, scores, name):
    boxes, scores = np.asarray(boxes, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: boxes must have shape (K, 4), got {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"{name}: scores must have shape ({boxes.shape[0]},), got {scores.shape}")
    return boxes, scores


def nms(boxes, scores, iou_threshold=0.5):
    """Greedy non-maximum suppression; returns kept indices by descending score.

    Take the best remaining box, drop every remaining box whose IoU with it is
    above ``iou_threshold``, repeat. Each step is one vectorised IoU row. Equal
    scores keep their input order (stable sort).
    """
    boxes, scores = _check_nms_inputs(boxes, scores, "nms")
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        iou = box_iou(boxes[best:best + 1], boxes[rest])[0]
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes, scores, classes, iou_threshold=0.5):
    """NMS run separately per class: boxes of different classes never suppress
    each other. Returns kept indices by descending score (stable on ties)."""
    boxes, scores = _check_nms_inputs(boxes, scores, "batched_nms")
    classes = np.asarray(classes)
    if classes.shape != scores.shape:
        raise ValueError(
            f"batched_nms: classes must have shape {scores.shape}, got {classes.shape}")
    keep = []
    for c in np.unique(classes):
        mine = classes == c
        keep.append(np.nonzero(mine)[0][nms(boxes[mine], scores[mine], iou_threshold)])
    keep = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    return keep[np.argsort(-scores[keep], kind="stable")].astype(np.int64)


def postprocess(output, S=7, B=2, C=20, conf_threshold=0.01, iou_threshold=0.5, max_detections=100):
    """decode + per-class NMS + keep the ``max_detections`` best per image.

    Use a low ``conf_threshold`` (0.001 - 0.01) for mAP evaluation, where
    low-score detections still add recall, and ~0.2 for showing detections.
    """
    decoded = decode(output, conf_threshold=conf_threshold, S=S, B=B, C=C)
    single = isinstance(decoded, np.ndarray)
    results = []
    for det in ([decoded] if single else decoded):
        keep = batched_nms(det[:, :4], det[:, 4], det[:, 5], iou_threshold)[:max_detections]
        results.append(det[keep])
    return results[0] if single else results
