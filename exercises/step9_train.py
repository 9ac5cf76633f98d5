"""Step 9 - your ops train a detector: the engine of steps 4 to 8 learns something.

Everything so far was checked one op at a time. Here your ReLU (step 4), Conv2d (step 5),
BatchNorm (step 6) and YOLOv1 loss (step 8) run inside tinygrad_yolo's engine (its Tensor and
backward(); ``Ops.mine()`` collects your classes) and train a tiny detector: 16x16 images,
each with one bright square, a 2x2 grid, one box per cell. The same network with the
project's own ops (``Ops.project()``) is the reference curve: from the same initial weights,
on the same batches, correct ops give the same loss at every step, to rounding.

Write two things, both short:

* ``TinyDetector.forward(x, ops)``: three convolutions of stride 2 (padding 1, 1, 0), batch
  norm and ReLU after the first two, then the channels moved last, so that the output is
  (N, S, S, 5 + C) as step 8 expects: ``ops.conv(x, w, stride, padding)``,
  ``ops.batch_norm(x, g, b)``, ``ops.relu(x)``, and ``.transpose(0, 2, 3, 1)``.
* ``train_step``: forward, the loss, zero the gradients, backward, the optimizer's step (the
  five lines every training loop has); return the loss as a float.

What the checks rely on: ``train(Ops.mine())`` and ``train(Ops.project())`` return the same
losses (relative 1e-6) at every one of 150 steps; the loss falls below a twentieth of where it
started; and the trained detector puts its highest confidence in the object's cell on at least
90% of 200 new images (``found_cells``). Steps 4, 5, 6 and 8 must pass first.

Check it: pytest exercises -m step9          (the reference: exercises/solutions/step9_train.py)
Read alongside: docs/walkthrough.md, sections 5-9; the ``step`` method in
tinygrad_yolo/training/loop.py is the full version of ``train_step``.
"""
import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.detection import YOLOv1Loss, encode_batch
from tinygrad_yolo.nn import functional as F

from exercises import ExerciseNotDone, load

SIZE, S, B, C = 16, 2, 1, 1   # 16x16 images, a 2x2 grid, one box per cell, one class


def toy_batch(n, seed):
    """(images (n, 1, SIZE, SIZE), target (n, S, S, 5 + C), boxes (n, 4) xyxy in [0, 1]): one
    bright square per image on faint noise."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.1, (n, 1, SIZE, SIZE))
    boxes = np.zeros((n, 4))
    for k in range(n):
        side = int(rng.integers(3, 7))
        y0, x0 = (int(v) for v in rng.integers(0, SIZE - side + 1, 2))
        images[k, 0, y0:y0 + side, x0:x0 + side] += 1.0
        boxes[k] = np.array([x0, y0, x0 + side, y0 + side]) / SIZE
    target, _ = encode_batch(list(boxes[:, None]), [np.zeros(1, int)] * n, S=S, C=C)
    return images, target.astype(np.float64), boxes


class Ops:
    """The four pieces a forward and a loss need, from one engine: ``Ops.mine()`` takes your
    classes from steps 4, 5, 6 and 8, ``Ops.project()`` tinygrad_yolo's own."""

    def __init__(self, conv, batch_norm, relu, loss):
        self.conv, self.batch_norm, self.relu, self.loss = conv, batch_norm, relu, loss

    @classmethod
    def mine(cls):
        conv, norm = load("step5_conv").Conv2d, load("step6_batchnorm").BatchNorm
        relu, step8 = load("step4_relu_mul").ReLU, load("step8_yolo_loss")

        def loss(pred, target):
            responsible, iou = step8.assign(pred.numpy(), target, S, B)
            return step8.yolo_loss(pred, target, responsible, iou, S, B, C)[0]
        return cls(lambda x, w, stride, padding: conv.apply(x, w, stride=stride, padding=padding),
                   lambda x, g, b: norm.apply(x, g, b, training=True),
                   relu.apply, loss)

    @classmethod
    def project(cls):
        yolo = YOLOv1Loss(S=S, B=B, C=C)
        return cls(lambda x, w, stride, padding: F.conv2d(x, w, stride=stride, padding=padding),
                   lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
                   F.relu, lambda pred, target: yolo(pred, target)[0])


class TinyDetector(nn.Module):
    """16x16 -> 8x8 -> 4x4 -> 2x2: three strided convolutions, batch norm and ReLU after the first
    two; the output (N, S, S, 5 + C) is one box (x, y, √w, √h, confidence) and C class scores
    per cell, the layout of step 8."""

    def __init__(self, seed=0, width=8):
        super().__init__()
        rng = np.random.default_rng(seed)

        def he(*shape):  # He et al.'s initialisation: variance 2 / fan-in
            return nn.Parameter(rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:])))
        self.w1, self.w2 = he(width, 1, 3, 3), he(width, width, 3, 3)
        self.w3 = nn.Parameter(he(5 * B + C, width, 2, 2).data * 0.1)  # outputs start near 0
        self.g1, self.g2 = nn.Parameter(np.ones(width)), nn.Parameter(np.ones(width))
        self.b1, self.b2 = nn.Parameter(np.zeros(width)), nn.Parameter(np.zeros(width))

    def forward(self, x, ops):
        raise ExerciseNotDone("step 9: write TinyDetector.forward (conv w1 stride 2 padding 1, "
                              "batch norm g1 b1, relu; the same with w2, g2, b2; conv w3 stride "
                              "2 padding 0; transpose(0, 2, 3, 1))")


def train_step(model, ops, optimizer, images, target):
    """One step: forward, loss, zero the gradients, backward, update; returns the loss."""
    raise ExerciseNotDone("step 9: write train_step (pred = model(tg.Tensor(images), ops); "
                          "loss = ops.loss(pred, target); zero_grad, backward, step; "
                          "return loss.item())")


def train(ops, steps=150, seed=0, lr=0.01):
    """A fresh TinyDetector (the same initial weights for every ``ops``) trained for ``steps``,
    each on a new batch of 32 toy images (the same batches for every ``ops``): (model, the
    loss at every step)."""
    model = TinyDetector(seed)
    optimizer = tg.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        images, target, _ = toy_batch(32, seed=(seed, step))
        losses.append(train_step(model, ops, optimizer, images, target))
    return model, losses


def found_cells(model, ops, images, target):
    """The fraction of images whose object's cell holds the highest predicted confidence."""
    with tg.no_grad():
        pred = model(tg.Tensor(images), ops).numpy()
    n = len(images)
    guess = pred[..., 4].reshape(n, -1).argmax(axis=1)
    truth = target[..., 4].reshape(n, -1).argmax(axis=1)
    return float((guess == truth).mean())
