"""Box formats and IoU.

Boxes are image-relative and normalised to [0, 1]. Two layouts:
  xyxy   = (x1, y1, x2, y2)  corners, used by NMS, mAP and drawing;
  cxcywh = (cx, cy, w, h)    centre and size, what YOLO predicts.
All functions work on the last axis, so any leading shape is fine, and on
NumPy or CuPy arrays alike (``array_module`` picks the module).
"""
from ..backend import array_module


def _check_last_axis(boxes, name):
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"{name}: expected boxes with a last axis of 4, got shape {tuple(boxes.shape)}")


def xyxy_to_cxcywh(boxes):
    xp = array_module(boxes)
    boxes = xp.asarray(boxes)
    _check_last_axis(boxes, "xyxy_to_cxcywh")
    x1, y1, x2, y2 = (boxes[..., k] for k in range(4))
    return xp.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def cxcywh_to_xyxy(boxes):
    xp = array_module(boxes)
    boxes = xp.asarray(boxes)
    _check_last_axis(boxes, "cxcywh_to_xyxy")
    cx, cy, w, h = (boxes[..., k] for k in range(4))
    return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def box_area(boxes):
    """Area of xyxy boxes; inverted boxes (x2 < x1) count as area 0, not negative."""
    xp = array_module(boxes)
    boxes = xp.asarray(boxes)
    _check_last_axis(boxes, "box_area")
    w = xp.clip(boxes[..., 2] - boxes[..., 0], 0, None)
    h = xp.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return w * h


def elementwise_box_iou(a, b):
    """IoU of xyxy boxes paired element by element: (..., 4) with (..., 4) -> (...),
    leading axes broadcast. Two zero-area boxes have union 0; their IoU is
    defined as 0 (no overlap to speak of) instead of 0/0 = NaN."""
    xp = array_module(a)
    a, b = xp.asarray(a), xp.asarray(b)
    _check_last_axis(a, "elementwise_box_iou")
    _check_last_axis(b, "elementwise_box_iou")
    iw = xp.clip(xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = xp.clip(xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = box_area(a) + box_area(b) - inter
    # where() evaluates both branches: divide by a safe denominator to avoid warnings.
    safe = xp.where(union > 0, union, 1)
    return xp.where(union > 0, inter / safe, 0).astype(xp.result_type(a.dtype, b.dtype, xp.float32))


def box_iou(a, b):
    """Pairwise IoU of xyxy boxes: (M, 4) x (K, 4) -> (M, K)."""
    xp = array_module(a)
    a, b = xp.asarray(a), xp.asarray(b)
    for boxes, name in ((a, "a"), (b, "b")):
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"box_iou: {name} must have shape (M, 4), got {tuple(boxes.shape)}")
    return elementwise_box_iou(a[:, None, :], b[None, :, :])  # broadcast (M, 1) against (1, K)
