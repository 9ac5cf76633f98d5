"""Step 8 - the YOLOv1 loss (Redmon et al. 2016, eq. 3), as tinygrad_yolo/detection/loss.py
computes it.

Per cell the network predicts B boxes (x, y, √w, √h, conf) and C class scores: ``pred`` is
(N, S, S, B*5 + C). The target (from tinygrad_yolo.detection.encode_batch) is (N, S, S, 5 + C):
[x, y, w, h, has_object, one-hot class], x and y the centre within the cell, w and h
relative to the image.

1. ``assign``: in a cell with an object, one predictor is "responsible" for it, by darknet's
   rule: the first of the largest IoU (both boxes decoded into the image frame) once any box
   overlaps the truth; while none does, the box closest to it (the smallest RMSE over
   (x/S, y/S, w, h), w and h squared back from √w, √h). Raw arrays in, constants out: no
   gradient flows through this choice or through the IoU.
2. ``yolo_loss``: with resp the responsible mask and obj the cells holding an object,
   summed and divided by the batch size N:

     coord = λcoord Σ_resp (x - x̂)² + (y - ŷ)²
     size  = λcoord Σ_resp (√w - √ŵ)² + (√h - √ĥ)²
     obj   =        Σ_resp (C - IoU)²
     noobj = λnoobj Σ_not resp C²
     class = λclass Σ_obj Σ_c (p(c) - p̂(c))²
"""
import numpy as np

from tinygrad_yolo.detection import elementwise_box_iou


def decode_xyxy(boxes, S):
    """(N, S, S, K, 4) of (x, y, √w, √h) in cell (row i, column j) -> image-frame xyxy."""
    rows = np.arange(S).reshape(S, 1, 1)
    cols = np.arange(S).reshape(1, S, 1)
    cx, cy = (cols + boxes[..., 0]) / S, (rows + boxes[..., 1]) / S
    w, h = boxes[..., 2] ** 2, boxes[..., 3] ** 2
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def target_boxes(target):
    """(N, S, S, 1, 4): the true box in the predictors' parametrisation (x, y, √w, √h)."""
    return np.concatenate([target[..., 0:2], np.sqrt(target[..., 2:4])], axis=-1)[..., None, :]


def assign(pred, target, S, B):
    """NumPy arrays in: (responsible (N, S, S, B) bool, iou (N, S, S, B)). ``responsible`` has
    one True in every cell with an object: the first of the highest IoU where any IoU is positive,
    else the first of the smallest RMSE (darknet's rule)."""
    N = pred.shape[0]
    boxes = pred[..., :B * 5].reshape(N, S, S, B, 5)[..., :4]
    true = target_boxes(target)
    iou = elementwise_box_iou(decode_xyxy(boxes, S), decode_xyxy(true, S))
    # the RMSE in image units over (x/S, y/S, w, h); the cell offset is the same for both boxes
    pred_xywh = np.concatenate([boxes[..., 0:2] / S, boxes[..., 2:4] ** 2], axis=-1)
    true_xywh = np.concatenate([true[..., 0:2] / S, true[..., 2:4] ** 2], axis=-1)
    rmse = np.sqrt(((pred_xywh - true_xywh) ** 2).sum(axis=-1))
    overlapping = iou > 0
    # argmax and argmin: the first of ties
    by_iou = np.where(overlapping, iou, -np.inf).argmax(axis=-1)
    best = np.where(overlapping.any(axis=-1), by_iou, rmse.argmin(axis=-1))
    responsible = (np.arange(B) == best[..., None]) & (target[..., 4:5] > 0)
    return responsible, iou


def yolo_loss(pred, target, responsible, iou, S, B, C, lambda_coord=5.0, lambda_noobj=0.5,
              lambda_class=1.0):
    """``pred`` a Tensor, the rest NumPy arrays: (total loss Tensor, {part: float}) with the
    parts coord, size, obj, noobj, class."""
    N = pred.shape[0]
    resp = responsible.astype(pred.dtype)
    boxes = pred[..., :B * 5].reshape(N, S, S, B, 5)
    delta = boxes[..., :4] - target_boxes(target)          # (N, S, S, B, 4), broadcast over B
    sq = delta * delta
    conf = boxes[..., 4]
    class_err = pred[..., B * 5:] - target[..., 5:]
    parts = {"coord": lambda_coord * (sq[..., 0:2].sum(axis=-1) * resp).sum(),
             "size": lambda_coord * (sq[..., 2:4].sum(axis=-1) * resp).sum(),
             "obj": ((conf - iou) ** 2 * resp).sum(),
             "noobj": lambda_noobj * (conf * conf * (1 - resp)).sum(),
             "class": lambda_class * (class_err * class_err * target[..., 4:5]).sum()}
    parts = {k: v / N for k, v in parts.items()}
    total = parts["coord"] + parts["size"] + parts["obj"] + parts["noobj"] + parts["class"]
    return total, {k: v.item() for k, v in parts.items()}
