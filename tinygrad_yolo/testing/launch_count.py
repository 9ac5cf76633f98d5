"""Count what one training step asks of a GPU, on a machine without one.

    python -m tinygrad_yolo.testing.launch_count            # the YOLO-ResNet18 at 128², batch 2
    python -m tinygrad_yolo.testing.launch_count --img 448 --batch 2 --json

Runs the step of tinygrad_yolo/bench.py (forward, YOLOv1 loss, backward, SGD momentum with
weight decay) on device="cuda" with fake_cupy standing in for CuPy, after one warm-up step (the
first step creates the momentum buffers), and reports device calls by category, host syncs and
the bytes of every allocation. The network is the real one (widths 64..512, one extra head stage
as at 448² and S = 7); 128² and S = 2 keep it fast on a CPU, and the number of calls does not
depend on the input size (the bytes do).

The step itself holds no host sync: the loss stays a device scalar (the training loop converts
its parts when it logs, see training/loop.py); ``measure`` reports the syncs of the step alone and,
separately, those of reading the loss afterwards.
"""
import argparse
import json

import numpy as np

S_SMALL = 2  # grid for small inputs: 128 / 32 = 4 -> one extra stage -> 2, the 448², S = 7 layout


def build_step(img=128, batch=2, S=S_SMALL, B=2, C=20, optimizer="sgd", width=1.0):
    """A closure running one training step on device='cuda' (call it inside fake_cupy.installed()).
    Returns the loss as a device scalar Tensor and the parts dict (device scalars)."""
    from .. import optim
    from ..detection import YOLOv1Loss
    from ..models import YOLOv1
    from ..tensor import Tensor
    from ..utils import seed

    seed(0)
    model = YOLOv1("resnet18", S=S, B=B, C=C, img_size=img, width=width, head="conv").to("cuda")
    if optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    else:
        opt = optim.AdamW(model.parameters(), lr=1e-3)
    crit = YOLOv1Loss(S=S, B=B, C=C, parts_on_host=False)  # no sync inside the step
    rng = np.random.default_rng(0)
    x = Tensor(rng.random((batch, 3, img, img), dtype=np.float32), device="cuda")
    t = Tensor(_targets(rng, batch, S, C), device="cuda")

    def step():
        loss, parts = crit(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss, parts
    step.model, step.optimizer = model, opt
    return step


def _targets(rng, n, S, C):
    from ..bench import random_targets
    return random_targets(rng, n, S, C)


def measure(img=128, batch=2, optimizer="sgd", warmup=1):
    """{"step": counts of one step, "read_loss": syncs of reading the loss and its parts after it,
    "names": the calls of the step by (category, name), "loss": the value}."""
    from . import fake_cupy

    with fake_cupy.installed():
        step = build_step(img, batch, optimizer=optimizer)
        for _ in range(warmup):
            loss, parts = step()
            loss.item()
        counter = fake_cupy.counter
        counter.reset()
        loss, parts = step()
        by_count = sorted(counter.names.items(), key=lambda kv: -kv[1])
        result = {"step": counter.summary(), "names": {f"{c}:{n}": v for (c, n), v in by_count}}
        counter.reset()
        value = loss.item()
        for v in parts.values():
            float(v.item() if hasattr(v, "item") else v)
        result["read_loss"] = counter.summary()["syncs"]
        result["loss"] = value
        result["config"] = dict(img=img, batch=batch, optimizer=optimizer,
                                model="YOLOv1 ResNet-18 width 1.0")
    return result


def _listed(counts):
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def format_report(r):
    s, c, mib = r["step"], r["config"], 2 ** 20
    lines = [f"one training step, {c['model']}, {c['img']}², batch {c['batch']}, "
             f"{c['optimizer']} (loss {r['loss']:.4f})",
             f"  device calls   {s['calls']:6d}   " + _listed(s["by_category"]),
             f"  host syncs     {s['syncs']:6d}   " + _listed(s["syncs_by_kind"]),
             f"  allocations    {s['allocations']:6d}   {s['allocated_bytes'] / mib:.1f} MiB in "
             f"all, {s['distinct_sizes']} distinct sizes, peak live "
             f"{s['peak_live_bytes'] / mib:.1f} MiB, hidden copies "
             f"{s['hidden_copy_bytes'] / mib:.1f} MiB",
             f"  reading the loss and its parts afterwards: {r['read_loss']} syncs",
             "  most frequent calls:"]
    for name, v in list(r["names"].items())[:15]:
        lines.append(f"    {v:5d}  {name}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--img", type=int, default=128)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = measure(a.img, a.batch, a.optimizer)
    print(json.dumps(r, indent=1) if a.json else format_report(r))


if __name__ == "__main__":
    main()
