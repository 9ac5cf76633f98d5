"""PASCAL VOC average precision and mAP, following the devkit's rule.

Per class: detections from all images sorted by descending score; each one is
compared with the ground truths of its class in its image and takes the one of
highest IoU. At IoU >= threshold it is
    ignored  if that ground truth is "difficult" (neither TP nor FP),
    a TP     if the ground truth is not matched yet (it becomes matched),
    an FP    if it is already matched (a duplicate detection);
below the threshold it is an FP. Recall counts only non-difficult ground truths.
Coordinates are continuous (normalised), so there is no devkit "+1 pixel".
"""
import numpy as np

from .boxes import box_iou


def _class_ids(values, num_classes, what):
    if not np.all(values == np.round(values)):
        raise ValueError(
            f"mean_average_precision: {what} has non-integer class ids {values.tolist()}")
    ids = values.astype(np.int64)
    if np.any(ids < 0) or np.any(ids >= num_classes):
        raise ValueError(f"mean_average_precision: {what} has class ids outside "
                         f"[0, {num_classes}): {np.unique(ids).tolist()}")
    return ids


def _rows(a, width):
    """As a float64 2-D array; an empty list/array becomes (0, width)."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(0, width) if a.size == 0 else a


def _validate(detections, ground_truths, num_classes, difficult):
    if len(detections) != len(ground_truths):
        raise ValueError(f"mean_average_precision: got detections for {len(detections)} images "
                         f"but ground truths for {len(ground_truths)}")
    if difficult is not None and len(difficult) != len(ground_truths):
        raise ValueError(f"mean_average_precision: difficult has {len(difficult)} entries, "
                         f"expected one per image ({len(ground_truths)})")
    dets, gts, diffs = [], [], []
    for n in range(len(ground_truths)):
        d, g = _rows(detections[n], 6), _rows(ground_truths[n], 5)
        if d.ndim != 2 or d.shape[1] != 6:
            raise ValueError(f"mean_average_precision: detections of image {n} must have shape "
                             f"(K, 6) [x1, y1, x2, y2, score, class], got {d.shape}")
        if g.ndim != 2 or g.shape[1] != 5:
            raise ValueError(f"mean_average_precision: ground truths of image {n} must have shape "
                             f"(M, 5) [x1, y1, x2, y2, class], got {g.shape}")
        flag = np.zeros(len(g), dtype=bool)
        if difficult is not None:
            flag = np.asarray(difficult[n])
            if flag.size == 0 or (flag.dtype.kind in "iu" and np.all((flag == 0) | (flag == 1))):
                flag = flag.astype(bool).reshape(-1)  # accept 0/1 integer flags too
            if flag.shape != (len(g),) or flag.dtype != bool:
                raise ValueError(f"mean_average_precision: difficult of image {n} must be a "
                                 f"boolean array of shape ({len(g)},), got {flag.dtype} "
                                 f"{flag.shape}")
        dets.append((d, _class_ids(d[:, 5], num_classes, f"detections of image {n}")))
        gts.append((g, _class_ids(g[:, 4], num_classes, f"ground truths of image {n}")))
        diffs.append(flag)
    return dets, gts, diffs


def average_precision(recall, precision, method="all-point"):
    """Area under a PR curve, VOC style.

    "11-point" (VOC2007): mean over r in {0, 0.1, ..., 1} of the best precision
    at recall >= r. "all-point" (VOC2010+): make precision monotone
    (non-increasing envelope from the right), then sum precision * recall step
    wherever recall changes.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if method == "11-point":
        # arange(11) / 10 gives exactly 0.3 where the devkit's arange(0, 1.1, 0.1)
        # gives 0.30000000000000004 and misses a recall of exactly 3/10.
        return float(np.mean([precision[recall >= t].max() if np.any(recall >= t) else 0.0
                              for t in np.arange(11) / 10]))
    if method == "all-point":
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        step = np.nonzero(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))
    raise ValueError(f"average_precision: method must be 'all-point' or '11-point', got {method!r}")


def mean_average_precision(detections, ground_truths, num_classes, iou_threshold=0.5,
                           method="all-point", difficult=None):
    """VOC mAP over ``num_classes``.

    detections:    per image a (K, 6) array [x1, y1, x2, y2, score, class]
    ground_truths: per image a (M, 5) array [x1, y1, x2, y2, class]
    difficult:     optional, per image a boolean (M,) array
    Returns {"map": mean AP over classes with at least one non-difficult ground
    truth, "ap": (num_classes,) array with NaN for the classes left out,
    "recall", "precision", "scores": per class the PR curve the AP was computed from
    (detections in score order; empty for classes without ground truth), "n_pos":
    (num_classes,) the non-difficult ground truths per class}.
    """
    if method not in ("all-point", "11-point"):
        raise ValueError(f"mean_average_precision: method must be 'all-point' or '11-point', "
                         f"got {method!r}")
    dets, gts, diffs = _validate(detections, ground_truths, num_classes, difficult)

    ap = np.full(num_classes, np.nan)
    curves = {"recall": [np.zeros(0)] * num_classes, "precision": [np.zeros(0)] * num_classes,
              "scores": [np.zeros(0)] * num_classes}
    n_positive = np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        # Ground truths of class c per image and their difficult flags.
        gt_boxes = [g[cls == c, :4] for g, cls in gts]
        gt_difficult = [flag[cls == c] for flag, (_, cls) in zip(diffs, gts)]
        n_pos = sum(int(np.sum(~f)) for f in gt_difficult)
        n_positive[c] = n_pos
        if n_pos == 0:
            continue  # AP undefined: no object of this class to find
        scores, tp, fp = _match_in_score_order(c, dets, gt_boxes, gt_difficult, iou_threshold)
        counted = (tp + fp) > 0  # drop the ignored detections from the curve
        tp, fp = np.cumsum(tp[counted]), np.cumsum(fp[counted])
        recall = tp / n_pos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap[c] = average_precision(recall, precision, method)
        curves["recall"][c], curves["precision"][c] = recall, precision
        curves["scores"][c] = scores[counted]

    valid = ~np.isnan(ap)
    return {"map": float(np.mean(ap[valid])) if np.any(valid) else float("nan"), "ap": ap,
            "n_pos": n_positive, **curves}


def _match_in_score_order(c, dets, gt_boxes, gt_difficult, iou_threshold):
    """Class ``c``'s detections, best score first, matched by the devkit's rule: returns their
    scores and 0/1 arrays marking each a true or a false positive (neither where it found a
    difficult object)."""
    image_of = np.concatenate([np.full(int(np.sum(cls == c)), n)
                               for n, (_, cls) in enumerate(dets)])
    boxes = np.concatenate([d[cls == c, :4] for d, cls in dets])
    scores = np.concatenate([d[cls == c, 4] for d, cls in dets])
    order = np.argsort(-scores, kind="stable")
    matched = [np.zeros(len(b), dtype=bool) for b in gt_boxes]
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for rank, k in enumerate(order):
        n = image_of[k]
        if len(gt_boxes[n]) == 0:
            fp[rank] = 1
            continue
        iou = box_iou(boxes[k:k + 1], gt_boxes[n])[0]
        best = int(np.argmax(iou))
        if iou[best] < iou_threshold:
            fp[rank] = 1
        elif gt_difficult[n][best]:
            pass  # matches a difficult object: neither rewarded nor punished
        elif not matched[n][best]:
            tp[rank] = 1
            matched[n][best] = True
        else:
            fp[rank] = 1  # duplicate detection of an object already found
    return scores[order], tp, fp


def confusion_matrix(detections, ground_truths, num_classes, conf_threshold=0.25, iou_threshold=0.5,
                     difficult=None):
    """(num_classes + 1) x (num_classes + 1) counts, rows = true class, columns = predicted class,
    the last row and column "background" (as ultralytics draws it).

    Per image, detections scoring at least ``conf_threshold`` are matched to ground truths of any
    class, best IoU first, one to one, at IoU >= ``iou_threshold``: a matched pair counts at
    (true, predicted), an unmatched ground truth at (true, background) (missed), an unmatched
    detection at (background, predicted) (a false alarm). Difficult ground truths, and
    detections matching them, are left out.
    """
    dets, gts, diffs = _validate(detections, ground_truths, num_classes, difficult)
    bg = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for (d, d_cls), (g, g_cls), flag in zip(dets, gts, diffs):
        keep = d[:, 4] >= conf_threshold
        d, d_cls = d[keep], d_cls[keep]
        iou = box_iou(d[:, :4], g[:, :4]) if len(d) and len(g) else np.zeros((len(d), len(g)))
        pairs = np.argwhere(iou >= iou_threshold)
        if len(pairs):
            pairs = pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]
        det_used, gt_used = np.zeros(len(d), bool), np.zeros(len(g), bool)
        for i, j in pairs:
            if det_used[i] or gt_used[j]:
                continue
            det_used[i] = gt_used[j] = True
            if not flag[j]:
                matrix[g_cls[j], d_cls[i]] += 1
        for j in np.nonzero(~gt_used & ~flag)[0]:
            matrix[g_cls[j], bg] += 1
        for i in np.nonzero(~det_used)[0]:
            matrix[bg, d_cls[i]] += 1
    return matrix
