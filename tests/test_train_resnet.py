"""End to end: a CIFAR-style ResNet-20 learns a tiny synthetic classification task."""
import time

import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo import models, optim
from tinygrad_yolo.nn import functional as F


def patterns(n, size=16, seed=0):
    """4 classes of coloured 16x16 textures: red horizontal stripes, green vertical
    stripes, blue checkerboard, yellow diagonal stripes; random phase, period and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    colours = np.array([[1, 0.2, 0.2], [0.2, 1, 0.2], [0.2, 0.2, 1], [1, 1, 0.2]])
    images, labels = np.empty((n, 3, size, size), np.float32), rng.integers(0, 4, n)
    for i, c in enumerate(labels):
        period, phase = rng.integers(3, 6), rng.integers(0, 6)
        wave = [(yy + phase) // period % 2, (xx + phase) // period % 2,
                ((yy + phase) // period + (xx + phase) // period) % 2,
                (xx + yy + phase) // period % 2][c]
        img = wave[None] * colours[c][:, None, None] + rng.normal(0, 0.5, (3, size, size))
        images[i] = img - 0.5
    return images, labels


def test_resnet20_learns_synthetic_patterns():
    tg.seed(0)
    images, labels = patterns(64)
    model = models.resnet20(num_classes=4)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    losses, t0 = [], time.perf_counter()
    for step in range(30):
        idx = rng.choice(len(images), 32, replace=False)
        loss = F.cross_entropy(model(tg.Tensor(images[idx])), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    elapsed = time.perf_counter() - t0
    start, end = np.mean(losses[:3]), np.mean(losses[-3:])
    print(f"resnet20, 30 SGD steps of batch 32 on 16x16: loss {start:.3f} -> {end:.3f} "
          f"in {elapsed:.1f} s")
    assert np.isfinite(losses).all()
    assert end < start / 2, losses
    model.eval()
    test_images, test_labels = patterns(64, seed=1)  # held out: the net must generalise
    with tg.no_grad():
        accuracy = (model(tg.Tensor(test_images)).numpy().argmax(1) == test_labels).mean()
    print(f"held-out accuracy {accuracy:.2f}")
    assert accuracy > 0.9, accuracy
