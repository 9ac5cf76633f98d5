"""Ground-truth boxes -> the YOLOv1 training target grid.

Per image the target is (S, S, 5 + C) float32; a cell holding an object stores
    [x_cell, y_cell, w, h, 1, one-hot(C)]
where (x_cell, y_cell) is the box centre relative to the cell (0..1 inside it)
and (w, h) the size relative to the image. Empty cells are all zeros, so
target[..., 4] is the "cell has an object" mask the loss uses.

Cell (row i, col j) covers y in [i/S, (i+1)/S) and x in [j/S, (j+1)/S); a
centre exactly at 1.0 belongs to the last row/column.
"""
import numpy as np

# Coordinates may leave [0, 1] by rounding after resizing or flipping; accept
# that much and clip, but reject anything larger as a real bug upstream.
_TOLERANCE = 1e-6


def _check_inputs(boxes, labels, S, C):
    if not (isinstance(S, (int, np.integer)) and S >= 1):
        raise ValueError(f"encode_targets: S must be a positive int, got {S!r}")
    if not (isinstance(C, (int, np.integer)) and C >= 1):
        raise ValueError(f"encode_targets: C must be a positive int, got {C!r}")
    boxes = np.asarray(boxes, dtype=np.float64)
    labels = np.asarray(labels)
    if boxes.size == 0 and labels.size == 0:  # an image without objects
        return np.zeros((0, 4)), np.zeros((0,), dtype=np.int64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"encode_targets: boxes must have shape (M, 4) in xyxy, got {boxes.shape}")
    if labels.shape != (boxes.shape[0],):
        raise ValueError(f"encode_targets: labels must have shape ({boxes.shape[0]},) to match "
                         f"boxes {boxes.shape}, got {labels.shape}")
    if not np.all(np.isfinite(boxes)):
        bad = np.argwhere(~np.isfinite(boxes))[0][0]
        raise ValueError(
            f"encode_targets: box {bad} has non-finite coordinates {boxes[bad].tolist()}")
    if boxes.min() < -_TOLERANCE or boxes.max() > 1 + _TOLERANCE:
        bad = np.argwhere((boxes < -_TOLERANCE) | (boxes > 1 + _TOLERANCE))[0][0]
        raise ValueError(f"encode_targets: box {bad} = {boxes[bad].tolist()} is outside [0, 1]; "
                         "boxes must be normalised by the image width and height")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        bad = np.argwhere((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))[0][0]
        raise ValueError(
            f"encode_targets: box {bad} = {boxes[bad].tolist()} has x2 < x1 or y2 < y1")
    if labels.dtype.kind == "f":  # labels often arrive as a float column of an (M, 5) array
        if not np.all(labels == np.round(labels)):
            raise ValueError(f"encode_targets: labels must be whole numbers, got {labels.tolist()}")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"encode_targets: labels must be integers, got dtype {labels.dtype}")
    if np.any(labels < 0) or np.any(labels >= C):
        raise ValueError(f"encode_targets: labels must lie in [0, {C}), got {labels.tolist()}")
    return np.clip(boxes, 0.0, 1.0), labels.astype(np.int64)


def encode_targets(boxes, labels, S=7, C=20):
    """Encode one image's boxes (M, 4) xyxy and labels (M,) into (S, S, 5 + C).

    YOLOv1 predicts one object per cell. When several centres fall into one
    cell the largest box (by area; the first one on ties) is kept and the
    others are dropped. Returns ``(target, n_dropped)``.
    """
    boxes, labels = _check_inputs(boxes, labels, S, C)
    target = np.zeros((S, S, 5 + C), dtype=np.float32)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    # floor(c * S) puts c = 1.0 in cell S, one past the grid: clamp it to the last cell.
    col = np.minimum(np.floor(cx * S).astype(np.int64), S - 1)
    row = np.minimum(np.floor(cy * S).astype(np.int64), S - 1)

    n_dropped = 0
    for k in np.argsort(-(w * h), kind="stable"):  # largest first: it claims the cell
        i, j = row[k], col[k]
        if target[i, j, 4] == 1:
            n_dropped += 1
            continue
        target[i, j, 0] = cx[k] * S - j
        target[i, j, 1] = cy[k] * S - i
        target[i, j, 2] = w[k]
        target[i, j, 3] = h[k]
        target[i, j, 4] = 1
        target[i, j, 5 + labels[k]] = 1
    return target, n_dropped


def encode_batch(list_of_boxes, list_of_labels, S=7, C=20, size_scale=1.0):
    """Encode N images; returns ((N, S, S, 5 + C) float32, total number dropped).

    size_scale: the images are training windows cut from an image ``size_scale`` times as wide;
    w and h are stored in that whole image's units, what the network predicts (the loss, given
    the same size_scale, compares boxes in the window's frame)."""
    if len(list_of_boxes) != len(list_of_labels):
        raise ValueError(f"encode_batch: got {len(list_of_boxes)} box arrays but "
                         f"{len(list_of_labels)} label arrays")
    targets = np.zeros((len(list_of_boxes), S, S, 5 + C), dtype=np.float32)
    total_dropped = 0
    for n, (boxes, labels) in enumerate(zip(list_of_boxes, list_of_labels)):
        try:
            targets[n], dropped = encode_targets(boxes, labels, S, C)
        except ValueError as e:
            raise ValueError(f"encode_batch: image {n}: {e}") from None
        total_dropped += dropped
    targets[..., 2:4] /= size_scale
    return targets, total_dropped
