"""Speed measurements behind `tinygrad-yolo bench` and benchmarks/bench_step.py.

One training step = forward, YOLOv1 loss on random valid targets, backward, SGD momentum
update, on the YOLO-ResNet18 of benchmarks/bench_step.py. The loader benchmark times
decode + augmentation alone (background threads), the rate training must not wait on.
"""
import statistics
import time

import numpy as np

CONFIGS = {
    # ResNet-18 (widths 64..512) at 224^2 with the conv head 512 -> 256 -> 30
    "r18_b8": dict(width=1.0, img=224, batch=8),
    "r18_b16": dict(width=1.0, img=224, batch=16),
    # the small configuration the default `tinygrad-yolo train` uses (widths 16/32/64/128)
    "tiny_b32": dict(width=0.25, img=224, batch=32),
    # the paper's input size, for the GPU (benchmarks/gpu_check.py)
    "r18_448_b32": dict(width=1.0, img=448, batch=32),
}
S, B, C = 7, 2, 20


def random_targets(rng, n, S=S, C=C):
    """Valid YOLOv1 targets (n, S, S, 5 + C): 1-3 objects per image, in distinct cells."""
    t = np.zeros((n, S, S, 5 + C), np.float32)
    for i in range(n):
        for cell in rng.choice(S * S, size=min(S * S, rng.integers(1, 4)), replace=False):
            r, c = divmod(int(cell), S)
            t[i, r, c, :4] = [rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.6),
                              rng.uniform(0.05, 0.6)]
            t[i, r, c, 4] = 1
            t[i, r, c, 5 + rng.integers(C)] = 1
    return t


def training_step(cfg, device="cpu"):
    """A closure running one training step of configuration ``cfg``; returns the loss."""
    from . import optim
    from .detection import YOLOv1Loss
    from .models import YOLOv1
    from .tensor import Tensor
    from .utils import seed

    seed(0)
    model = YOLOv1("resnet18", S=S, B=B, C=C, img_size=cfg["img"], width=cfg["width"], head="conv")
    model.to(device)
    opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    crit = YOLOv1Loss(S=S, B=B, C=C, parts_on_host=False)  # no sync inside the step
    rng = np.random.default_rng(0)
    images = rng.random((cfg["batch"], 3, cfg["img"], cfg["img"]), dtype=np.float32)
    x = Tensor(images, device=device)
    t = random_targets(rng, cfg["batch"])

    def step():
        loss, _ = crit(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()  # the one host sync: the step is over when its loss is known
    return step


def time_steps(step, steps=5, warmup=2):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def loader_rate(root, img_size, batch=32, workers=2, batches=20):
    """Images/s of the training loader alone (decode + augment in background threads)."""
    from .data import DataLoader, TrainTransform, VOCDataset
    ds = VOCDataset(root, "train")
    loader = DataLoader(ds, batch, TrainTransform(img_size), shuffle=True, drop_last=True,
                        num_workers=workers)
    it = iter(loader)
    next(it)  # thread start-up
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        n += len(b.ids)
    rate = n / (time.perf_counter() - t0)
    it.close()
    return rate
