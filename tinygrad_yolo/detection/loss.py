"""The YOLOv1 loss (Redmon et al. 2016, eq. 3), as darknet's detection_layer.c
computes it with sqrt=1 and rescore=1.

Per cell the network predicts B boxes (x, y, sqrt_w, sqrt_h, conf) and C class
scores; the target (from encode_batch) holds [x, y, w, h, has_object, one-hot].
In a cell with an object one predictor is "responsible": the one whose decoded
box overlaps the ground truth most. Then, summed over cells and boxes and
divided by the batch size N,

  coord = λcoord Σ_resp (x - x̂)² + (y - ŷ)²
  size  = λcoord Σ_resp (√w - √ŵ)² + (√h - √ĥ)²       √ makes small boxes' errors count more
  obj   =        Σ_resp (C - Ĉ)²                      Ĉ = IoU (rescore) or 1
  noobj = λnoobj Σ_not resp C²                        empty cells and the other predictors
  class =        Σ_cells with object Σ_c (p(c) - p̂(c))²

Which predictor is responsible, and the IoU used as Ĉ, are constants: they are
computed on the raw arrays and no gradient flows through them.
"""
import numpy as np

from ..backend import array_module, to_device
from ..tensor import Tensor, as_tensor
from .boxes import elementwise_box_iou


class YOLOv1Loss:
    def __init__(self, S=7, B=2, C=20, lambda_coord=5.0, lambda_noobj=0.5, rescore=True, lambda_class=1.0,
                 size_scale=1.0):
        """lambda_class: darknet's class_scale (1 in the paper and cfg/yolov1.cfg). size_scale: w and h
        (targets and predictions) are relative to an image ``size_scale`` times as wide as the
        input this grid covers -- a training window cut from a larger image, whose whole-image
        w, h the network predicts; the IoU compares boxes in the window's frame."""
        for name, value in (("S", S), ("B", B), ("C", C)):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"YOLOv1Loss: {name} must be a positive int, got {value!r}")
        if not size_scale >= 1:
            raise ValueError(f"YOLOv1Loss: size_scale must be >= 1 (a window of the image), got {size_scale!r}")
        self.S, self.B, self.C = S, B, C
        self.lambda_coord, self.lambda_noobj, self.rescore = lambda_coord, lambda_noobj, rescore
        self.lambda_class, self.size_scale = lambda_class, float(size_scale)

    def __repr__(self):
        return (f"YOLOv1Loss(S={self.S}, B={self.B}, C={self.C}, lambda_coord={self.lambda_coord}, "
                f"lambda_noobj={self.lambda_noobj}, rescore={self.rescore})")

    def __call__(self, pred, target):
        """``pred`` Tensor (N, S, S, B*5 + C), ``target`` array or Tensor (N, S, S, 5 + C).
        Returns ``(total, parts)``: the scalar loss Tensor and a dict of floats
        (coord, size, obj, noobj, class) that add up to it."""
        pred, target = self._check(pred, target)
        responsible, iou = self.assign(pred.data, target)
        return self.compute(pred, target, responsible, iou)

    def _check(self, pred, target):
        S, B, C = self.S, self.B, self.C
        pred = as_tensor(pred)
        if pred.ndim != 4 or pred.shape[1:] != (S, S, B * 5 + C):
            raise ValueError(f"YOLOv1Loss: pred must have shape (N, {S}, {S}, {B * 5 + C}) for S={S}, "
                             f"B={B}, C={C}, got {pred.shape}")
        if pred.dtype.kind != "f":
            raise TypeError(f"YOLOv1Loss: pred must be floating point, got {pred.dtype}")
        target = target.data if isinstance(target, Tensor) else target
        target = to_device(target if hasattr(target, "dtype") else np.asarray(target), pred.device)
        if target.shape != (pred.shape[0], S, S, 5 + C):
            raise ValueError(f"YOLOv1Loss: target must have shape ({pred.shape[0]}, {S}, {S}, {5 + C}) "
                             f"to match pred {pred.shape}, got {target.shape}")
        return pred, target.astype(pred.dtype, copy=False)

    def _decode_xyxy(self, boxes):
        """(..., S, S, [B,] 4) of (x, y, sqrt_w, sqrt_h) -> image-frame xyxy, so the
        predicted and the true box are compared in one frame."""
        xp = array_module(boxes)
        S = self.S
        extra = (1,) * (boxes.ndim - 4)  # a B axis, if there is one, before the last
        rows = xp.arange(S, dtype=boxes.dtype).reshape((S, 1) + extra)
        cols = xp.arange(S, dtype=boxes.dtype).reshape((1, S) + extra)
        cx, cy = (cols + boxes[..., 0]) / S, (rows + boxes[..., 1]) / S
        w, h = boxes[..., 2] ** 2 * self.size_scale, boxes[..., 3] ** 2 * self.size_scale
        return xp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)

    def _target_boxes(self, target):
        """(N, S, S, 1, 4) target in the predictors' parametrisation (x, y, √w, √h)."""
        xp = array_module(target)
        return xp.concatenate([target[..., 0:2], xp.sqrt(target[..., 2:4])], axis=-1)[..., None, :]

    def assign(self, pred, target):
        """Which predictor answers for each object: raw arrays in, constants out.

        Returns ``responsible`` (N, S, S, B) bool, True for one box in every cell
        with an object, and ``iou`` (N, S, S, B), each box's IoU with its cell's
        true box. The box of highest IoU wins; among equal IoUs (all zero
        included: no box overlaps yet, as at the start of training) the one of
        smallest squared error in (x, y, √w, √h) wins, as in darknet.
        """
        xp = array_module(pred)
        N, S, B = pred.shape[0], self.S, self.B
        boxes = pred[..., :B * 5].reshape(N, S, S, B, 5)[..., :4]
        true = self._target_boxes(target)
        iou = elementwise_box_iou(self._decode_xyxy(boxes), self._decode_xyxy(true))  # (N, S, S, B)
        error = ((boxes - true) ** 2).sum(axis=-1)
        tied_best = iou == iou.max(axis=-1, keepdims=True)
        best = xp.argmin(xp.where(tied_best, error, xp.inf), axis=-1)                 # (N, S, S)
        responsible = (xp.arange(B) == best[..., None]) & (target[..., 4:5] > 0)
        return responsible, iou

    def compute(self, pred, target, responsible, iou):
        """The loss for a given assignment (see ``assign``); differentiable in
        ``pred`` only. Kept separate so a gradient check can hold the
        assignment fixed, as the training step does."""
        N, S, B = pred.shape[0], self.S, self.B
        dtype = pred.dtype
        resp = responsible.astype(dtype)                  # (N, S, S, B) constant mask
        has_object = target[..., 4:5]                     # (N, S, S, 1)
        conf_target = iou.astype(dtype) if self.rescore else 1.0

        boxes = pred[..., :B * 5].reshape(N, S, S, B, 5)
        delta = boxes[..., :4] - self._target_boxes(target)   # (N, S, S, B, 4) Tensor
        sq = delta * delta
        conf = boxes[..., 4]                                   # (N, S, S, B)
        class_err = pred[..., B * 5:] - target[..., 5:]        # (N, S, S, C)

        parts = {
            "coord": self.lambda_coord * (sq[..., 0:2].sum(axis=-1) * resp).sum(),
            "size": self.lambda_coord * (sq[..., 2:4].sum(axis=-1) * resp).sum(),
            "obj": ((conf - conf_target) ** 2 * resp).sum(),
            "noobj": self.lambda_noobj * (conf * conf * (1 - resp)).sum(),
            "class": self.lambda_class * (class_err * class_err * has_object).sum(),
        }
        parts = {name: value / N for name, value in parts.items()}
        total = parts["coord"] + parts["size"] + parts["obj"] + parts["noobj"] + parts["class"]
        return total, {name: value.item() for name, value in parts.items()}
