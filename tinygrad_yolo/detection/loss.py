"""The YOLOv1 loss (Redmon et al. 2016, eq. 3), as darknet's forward_detection_layer
(src/detection_layer.c) computes it with sqrt=1 and rescore=1.

Per cell the network predicts B boxes (x, y, sqrt_w, sqrt_h, conf) and C class
scores; the target (from encode_batch) holds [x, y, w, h, has_object, one-hot],
x and y relative to the cell, w and h to the image. In a cell with an object one
predictor is "responsible" (see ``assign``). Then, summed over cells and boxes and
divided by the batch size N,

  coord = λcoord Σ_resp (x - x̂)² + (y - ŷ)²
  size  = λcoord Σ_resp (√w - √ŵ)² + (√h - √ĥ)²       √ makes small boxes' errors count more
  obj   =        Σ_resp (C - Ĉ)²                      Ĉ = IoU (rescore) or 1
  noobj = λnoobj Σ_not resp C²                        empty cells and the other predictors
  class =        Σ_cells with object Σ_c (p(c) - p̂(c))²

Which predictor is responsible, and the IoU used as Ĉ, are constants: they are
computed on the raw arrays and no gradient flows through them.

What darknet does that the paper doesn't say:

* The responsible predictor. The paper: "the one with the highest current IoU with
  the ground truth". darknet scans the B boxes in order: while no box has a positive
  IoU, the one with the smallest box_rmse wins -- the RMSE over (x/S, y/S, w, h) in
  image units, the predicted √w, √h squared back, against the true box in the same
  units; from the first box with a positive IoU on, a box wins only with a strictly
  larger IoU. So a box that overlaps at all beats every box that doesn't, and ties
  go to the lower index. Early in training, when few boxes overlap their object yet,
  the RMSE decides most cells.
* sqrt=1: the network predicts √w and √h themselves (the paper only writes the
  square roots into the loss); they are squared for the IoU and the RMSE.
* rescore=1: the confidence target of the responsible box is its IoU with the truth
  at the current prediction, a constant.
* In a cell with an object the other B - 1 boxes get the λnoobj term (darknet gives
  it to every box, then replaces it for the responsible one).
* darknet writes the gradient, not the loss: its delta is -1/2 of the gradient of
  the sum above for one image (it drops the factor 2), and its SGD update divides by
  the batch size, as our division by N does. The cost it prints is not the sum its
  delta follows (it adds (1 - C)² for the responsible box even with rescore, and
  (1 - IoU)²); this class computes the sum whose gradient is -2 · delta / N, and the
  tests compare both with a line-by-line transcription of forward_detection_layer.
* cfg/yolov1.cfg trains B = 3 boxes per cell (the paper: 2), with object_scale 1,
  noobject_scale 0.5, class_scale 1 and coord_scale 5.
"""
import numpy as np

from ..backend import array_module, to_device
from ..tensor import Tensor, as_tensor


class YOLOv1Loss:
    def __init__(self, S=7, B=2, C=20, lambda_coord=5.0, lambda_noobj=0.5, rescore=True,
                 lambda_class=1.0, size_scale=1.0, parts_on_host=True):
        """lambda_class: darknet's class_scale (1 in the paper and cfg/yolov1.cfg). size_scale: w
        and h (targets and predictions) are relative to an image ``size_scale`` times as wide as the
        input this grid covers -- a training window cut from a larger image, whose whole-image
        w, h the network predicts; the IoU compares boxes in the window's frame. parts_on_host:
        the parts come back as Python floats (True) or as 0-d arrays on the loss's device (False:
        no host synchronisation inside a GPU step; the training loop converts them when it logs)."""
        for name, value in (("S", S), ("B", B), ("C", C)):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"YOLOv1Loss: {name} must be a positive int, got {value!r}")
        if not size_scale >= 1:
            raise ValueError(f"YOLOv1Loss: size_scale must be >= 1 (a window of the image), "
                             f"got {size_scale!r}")
        self.S, self.B, self.C = S, B, C
        self.lambda_coord, self.lambda_noobj, self.rescore = lambda_coord, lambda_noobj, rescore
        self.lambda_class, self.size_scale = lambda_class, float(size_scale)
        self.parts_on_host = bool(parts_on_host)

    def __repr__(self):
        return (f"YOLOv1Loss(S={self.S}, B={self.B}, C={self.C}, lambda_coord={self.lambda_coord}, "
                f"lambda_noobj={self.lambda_noobj}, rescore={self.rescore}, "
                f"lambda_class={self.lambda_class}, "
                f"size_scale={self.size_scale})")

    def __call__(self, pred, target):
        """``pred`` Tensor (N, S, S, B*5 + C), ``target`` array or Tensor (N, S, S, 5 + C).
        Returns ``(total, parts)``: the scalar loss Tensor and a dict of floats
        (coord, size, obj, noobj, class) that add up to it (0-d device arrays, detached, with
        ``parts_on_host=False``)."""
        pred, target = self._check(pred, target)
        responsible, iou = self.assign(pred.data, target)
        return self.compute(pred, target, responsible, iou)

    def _check(self, pred, target):
        S, B, C = self.S, self.B, self.C
        pred = as_tensor(pred)
        if pred.ndim != 4 or pred.shape[1:] != (S, S, B * 5 + C):
            raise ValueError(f"YOLOv1Loss: pred must have shape (N, {S}, {S}, {B * 5 + C}) for "
                             f"S={S}, B={B}, C={C}, got {pred.shape}")
        if pred.shape[0] == 0:
            raise ValueError(f"YOLOv1Loss: the batch is empty (pred shape {pred.shape}); the loss "
                             "is a mean over images")
        if pred.dtype.kind != "f":
            raise TypeError(f"YOLOv1Loss: pred must be floating point, got {pred.dtype}")
        target = target.data if isinstance(target, Tensor) else target
        target = to_device(target if hasattr(target, "dtype") else np.asarray(target), pred.device)
        if target.shape != (pred.shape[0], S, S, 5 + C):
            raise ValueError(f"YOLOv1Loss: target must have shape "
                             f"({pred.shape[0]}, {S}, {S}, {5 + C}) to match pred {pred.shape}, "
                             f"got {target.shape}")
        return pred, target.astype(pred.dtype, copy=False)

    def _darknet_boxes(self, boxes, squared):
        """(..., 4) boxes -> darknet's (x, y, w, h) for the IoU and the RMSE: x and y divided by S
        (the cell offset left out: both boxes share it, so neither the IoU nor the RMSE changes),
        w and h in image units -- squared back from the predicted √w, √h (``squared``), or the
        target's own w, h."""
        S = self.S
        w, h = boxes[..., 2], boxes[..., 3]
        if squared:
            w, h = w ** 2, h ** 2
        # training on a window: w, h are the whole image's; the window's frame is size_scale
        # times smaller
        return boxes[..., 0] / S, boxes[..., 1] / S, w * self.size_scale, h * self.size_scale

    def _target_boxes(self, target):
        """(N, S, S, 1, 4) target in the predictors' parametrisation (x, y, √w, √h)."""
        xp = array_module(target)
        return xp.concatenate([target[..., 0:2], xp.sqrt(target[..., 2:4])], axis=-1)[..., None, :]

    def assign(self, pred, target):
        """Which predictor answers for each object: raw arrays in, constants out.

        Returns ``responsible`` (N, S, S, B) bool, True for one box in every cell with an
        object, and ``iou`` (N, S, S, B), each box's IoU with its cell's true box. The rule is
        darknet's (forward_detection_layer in src/detection_layer.c), which scans the B boxes
        in order keeping ``best_iou`` (from 0) and ``best_rmse`` (from 20):

            if best_iou > 0 or iou > 0:  the box wins if iou > best_iou
            else:                        the box wins if rmse < best_rmse

        So once any box overlaps the truth, the first box of the largest IoU wins, even over an
        earlier box chosen by RMSE; while none does (IoU exactly 0, most cells early in
        training), the first box of the smallest RMSE wins -- the RMSE over (x/S, y/S, w, h),
        w and h squared back, against the true box in the same units (box_rmse). Where every
        RMSE is 20 or more (or NaN) darknet keeps best_index = -1 and reads the neighbouring
        predictor's memory; we take the smallest RMSE there.
        """
        xp = array_module(pred)
        N, S, B = pred.shape[0], self.S, self.B
        boxes = pred[..., :B * 5].reshape(N, S, S, B, 5)[..., :4]
        out = self._darknet_boxes(boxes, squared=True)                       # each (N, S, S, B)
        truth = self._darknet_boxes(target[..., None, 0:4], squared=False)   # each (N, S, S, 1)
        iou = _darknet_iou(out, truth, xp)
        rmse = xp.sqrt(sum((a - b) ** 2 for a, b in zip(out, truth)))
        overlapping = iou > 0                                                 # NaN: False, as in C
        # argmax: the first of ties
        by_iou = xp.argmax(xp.where(overlapping, iou, -xp.inf), axis=-1)
        by_rmse = xp.argmin(xp.where(xp.isnan(rmse), xp.inf, rmse), axis=-1)  # a NaN never wins '<'
        best = xp.where(overlapping.any(axis=-1), by_iou, by_rmse)           # (N, S, S)
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
        if not self.parts_on_host:  # detached device scalars: converting them waits for the GPU
            return total, {name: value.data.reshape(()) for name, value in parts.items()}
        return total, {name: value.item() for name, value in parts.items()}


def _darknet_iou(a, b, xp):
    """IoU of (x, y, w, h) boxes as darknet's box.c computes it: overlaps from centres and sizes,
    no intersection where either overlap is negative, and 0 where the intersection or the union
    is 0."""
    def overlap(c1, s1, c2, s2):
        return xp.minimum(c1 + s1 / 2, c2 + s2 / 2) - xp.maximum(c1 - s1 / 2, c2 - s2 / 2)
    ow, oh = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = xp.where((ow < 0) | (oh < 0), 0, ow * oh)
    union = a[2] * a[3] + b[2] * b[3] - inter
    empty = (inter == 0) | (union == 0)
    return xp.where(empty, 0, inter / xp.where(empty, 1, union))
