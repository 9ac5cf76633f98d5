"""Step 8 - the YOLOv1 loss (Redmon et al. 2016, eq. 3), as tinygrad_yolo/detection/loss.py
computes it.

Per cell the network predicts B boxes (x, y, √w, √h, conf) and C class scores: ``pred`` is
(N, S, S, B*5 + C). The target (from tinygrad_yolo.detection.encode_batch) is (N, S, S, 5 + C):
[x, y, w, h, has_object, one-hot class], x and y the centre within the cell, w and h
relative to the image.

1. ``decode_xyxy``: a box (x, y, √w, √h) of cell (row i, column j) has its centre at
   ((j + x) / S, (i + y) / S) and size (√w², √h²) in the image frame; return its corners.
2. ``assign``: in a cell with an object, one predictor is "responsible" for it, by darknet's
   rule (docs/walkthrough.md, section 10): once any predictor's decoded box overlaps the true
   box (IoU > 0, tinygrad_yolo.detection.elementwise_box_iou), the first of the largest IoU;
   while none does (every IoU 0, most cells early in training), the first of the smallest
   RMSE over (x/S, y/S, w, h) in image units -- the predicted √w, √h squared back, against
   the true w, h. Raw arrays in, constants out: no gradient flows through this choice or the IoU.
3. ``yolo_loss``: with resp the responsible mask and obj the cells holding an object,
   summed over cells and predictors and divided by the batch size N:

     coord = λcoord Σ_resp (x - x̂)² + (y - ŷ)²
     size  = λcoord Σ_resp (√w - √ŵ)² + (√h - √ĥ)²
     obj   =        Σ_resp (C - IoU)²
     noobj = λnoobj Σ_not resp C²
     class = λclass Σ_obj Σ_c (p(c) - p̂(c))²

   With Tensor operations on ``pred`` (the masks and the IoU are constant arrays), so that
   backward() gives the gradient. Demo 9 (examples/09_yolo_gradients.py) draws it.

Check it: pytest exercises -m step8          (the reference: exercises/solutions/step8_yolo_loss.py)
Read alongside: docs/walkthrough.md, the detection sections.
"""
import numpy as np

from tinygrad_yolo.detection import elementwise_box_iou  # noqa: F401

from exercises import ExerciseNotDone


def decode_xyxy(boxes, S):
    """(N, S, S, K, 4) of (x, y, √w, √h) in cell (row i, column j) -> image-frame xyxy."""
    raise ExerciseNotDone("step 8: write decode_xyxy (centre ((j + x) / S, (i + y) / S), "
                          "size (√w², √h²))")


def target_boxes(target):
    """(N, S, S, 1, 4): the true box in the predictors' parametrisation (x, y, √w, √h)."""
    return np.concatenate([target[..., 0:2], np.sqrt(target[..., 2:4])], axis=-1)[..., None, :]


def assign(pred, target, S, B):
    """NumPy arrays in: (responsible (N, S, S, B) bool, iou (N, S, S, B)). ``responsible`` has
    one True in every cell with an object: the first of the highest IoU where any IoU is positive,
    else the first of the smallest RMSE (darknet's rule)."""
    raise ExerciseNotDone("step 8: write assign (decode both, IoU per predictor; the argmax where "
                          "one overlaps, else the argmin of the RMSE; only in cells with an "
                          "object)")


def yolo_loss(pred, target, responsible, iou, S, B, C, lambda_coord=5.0, lambda_noobj=0.5,
              lambda_class=1.0):
    """``pred`` a Tensor, the rest NumPy arrays: (total loss Tensor, {part: float}) with the
    parts coord, size, obj, noobj, class."""
    raise ExerciseNotDone("step 8: write yolo_loss (the five sums above, each divided by N)")
