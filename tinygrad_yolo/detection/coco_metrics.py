"""COCO's box AP: mAP@[.5:.95] and mAP@0.5 with 101-point interpolation.

The numbers papers, ultralytics and torchvision report, computed the way
pycocotools' COCOeval computes them (area "all", at most 100 detections per
image and class), so they can be set beside published results:

  matching   per image and class, detections by descending score (stable) each
             take the not-yet-matched ground truth of highest IoU >= t; on equal
             IoU the later ground truth wins, as COCOeval's loop does. An ignored
             ground truth (a VOC "difficult" one) is taken only when no normal
             one qualifies, and the detection that takes it is neither TP nor FP.
  curve      all images' detections of a class by descending score (stable),
             precision made non-increasing from the right, then read at the
             101 recalls 0, 0.01, ..., 1 (the first point reaching each recall;
             0 past the last recall reached).
  average    over the 10 IoU thresholds 0.5, 0.55, ..., 0.95 and the 101
             recalls; classes without a (non-ignored) ground truth are left out.

VOC's all-point AP (metrics.py) differs in two ways: a duplicate detection of
a found object there is a false positive, here it may match another object;
and the area is exact there, sampled at 101 recalls here.
"""
import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _rows(a, width, what):
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(0, width) if a.size == 0 else a
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"coco_average_precision: {what} must have shape (K, {width}), "
                         f"got {a.shape}")
    inverted = np.nonzero((a[:, 2] < a[:, 0]) | (a[:, 3] < a[:, 1]))[0]
    if len(inverted):  # COCOeval gives these a negative area and quietly ignores them
        raise ValueError(f"coco_average_precision: {what}: box {inverted[0]} "
                         f"{a[inverted[0], :4].tolist()} has x2 < x1 or y2 < y1")
    return a


def coco_iou(dets, gts):
    """(D, G) IoU of xyxy boxes, computed from (x, y, w, h) in the order pycocotools' C
    code uses, so that a pair exactly at a threshold falls on the same side."""
    d = np.concatenate([dets[:, :2], dets[:, 2:4] - dets[:, :2]], axis=1)[:, None, :]
    g = np.concatenate([gts[:, :2], gts[:, 2:4] - gts[:, :2]], axis=1)[None, :, :]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = d[..., 2] * d[..., 3] + g[..., 2] * g[..., 3] - inter
    return np.where(inter > 0, inter / np.where(inter > 0, union, 1.0), 0.0)


def match_image(iou, ignored, threshold):
    """Greedy matching of one image and class at one IoU threshold.

    iou: (D, G), detections by descending score, ground truths normal first.
    Returns per detection the matched ground truth index or -1.
    """
    match = np.full(iou.shape[0], -1)
    hits = iou >= min(threshold, 1 - 1e-10)
    taken = np.zeros(iou.shape[1], dtype=bool)
    for d in np.flatnonzero(hits.any(axis=1)):  # only detections that overlap enough
        free = hits[d] & ~taken
        for group in (free & ~ignored, free & ignored):
            if group.any():
                best = np.where(group, iou[d], -1.0)
                match[d] = len(best) - 1 - int(np.argmax(best[::-1]))  # the last of equal IoUs
                taken[match[d]] = True
                break
    return match


def precision_at_recalls(is_tp, is_fp, n_positive):
    """101-point precision of one class at one threshold from the score-ordered TP/FP flags."""
    tp, fp = np.cumsum(is_tp).astype(np.float64), np.cumsum(is_fp).astype(np.float64)
    recall = tp / n_positive
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    where = np.searchsorted(recall, RECALL_POINTS, side="left")
    out = np.zeros(len(RECALL_POINTS))
    reached = where < len(precision)
    out[reached] = precision[where[reached]]
    return out


def _class_flags(dets, gts, ignored, max_detections):
    """Per image of one class: scores, matched-flags (T, D), ignore-flags (T, D)."""
    T = len(IOU_THRESHOLDS)
    scores, matched, skipped = [np.zeros(0)], [np.zeros((T, 0), bool)], [np.zeros((T, 0), bool)]
    for d, g, ig in zip(dets, gts, ignored):
        if not len(d):
            continue  # an image without detections adds only its ground truths, counted apart
        d = d[np.argsort(-d[:, 4], kind="stable")][:max_detections]
        order = np.argsort(ig, kind="stable")
        g, ig = g[order], ig[order]
        if len(d) and len(g):
            iou = coco_iou(d, g)
            found = np.stack([match_image(iou, ig, t) for t in IOU_THRESHOLDS])
        else:
            found = np.full((T, len(d)), -1)
        scores.append(d[:, 4])
        matched.append(found >= 0)
        skipped.append((found >= 0) & ig[np.maximum(found, 0)] if len(g) else found >= 0)
    return np.concatenate(scores), np.concatenate(matched, 1), np.concatenate(skipped, 1)


def class_precision(dets, gts, ignored, max_detections=100):
    """(10, 101) precision table of one class, or None when it has no normal ground truth."""
    n_positive = sum(int(np.sum(~ig)) for ig in ignored)
    if n_positive == 0:
        return None
    scores, matched, skipped = _class_flags(dets, gts, ignored, max_detections)
    order = np.argsort(-scores, kind="stable")
    matched, skipped = matched[:, order], skipped[:, order]
    return np.stack([precision_at_recalls(m & ~s, ~m & ~s, n_positive)
                     for m, s in zip(matched, skipped)])


def coco_average_precision(detections, ground_truths, num_classes, difficult=None,
                           max_detections=100):
    """COCO box mAP over ``num_classes``, inputs as for ``mean_average_precision``.

    detections:    per image a (K, 6) array [x1, y1, x2, y2, score, class]
    ground_truths: per image a (M, 5) array [x1, y1, x2, y2, class]
    difficult:     optional, per image a boolean (M,) array: those are ignored
    Returns {"map": mAP@[.5:.95], "map50": mAP@0.5, "map75": mAP@0.75, "ap", "ap50":
    (num_classes,) per class, NaN where the class has no ground truth}.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"coco_average_precision: got detections for {len(detections)} images "
                         f"but ground truths for {len(ground_truths)}")
    dets = [_rows(d, 6, f"detections of image {n}") for n, d in enumerate(detections)]
    gts = [_rows(g, 5, f"ground truths of image {n}") for n, g in enumerate(ground_truths)]
    flags = [np.zeros(len(g), bool) if difficult is None else np.asarray(difficult[n], bool)
             .reshape(len(g)) for n, g in enumerate(gts)]
    table = np.full((num_classes, len(IOU_THRESHOLDS)), np.nan)
    for c in range(num_classes):
        precision = class_precision([d[d[:, 5] == c] for d in dets],
                                    [g[g[:, 4] == c] for g in gts],
                                    [f[g[:, 4] == c] for f, g in zip(flags, gts)], max_detections)
        if precision is not None:
            table[c] = precision.mean(axis=1)
    found = ~np.isnan(table[:, 0])

    def mean(column):
        return float(np.mean(column[found])) if found.any() else float("nan")
    per_class = table.mean(axis=1)
    return {"map": mean(per_class), "map50": mean(table[:, 0]), "map75": mean(table[:, 5]),
            "ap": per_class, "ap50": table[:, 0]}
