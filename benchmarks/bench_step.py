"""One YOLOv1-ResNet training step (forward, YOLOv1 loss, backward, SGD momentum), timed.

    python benchmarks/bench_step.py                 # all configurations, JSON lines on stdout
    python benchmarks/bench_step.py --configs r18_b8 --steps 5 --rounds 2

Each (framework, configuration) runs in its own subprocess, so peak resident memory is that
framework's alone; rounds alternate ours / PyTorch so machine noise hits both alike. PyTorch is
optional: when it is installed the identical network is built in it and the ratio ours/PyTorch
is printed; the tinygrad_yolo package never imports it. A per-op profile of one of our steps is
written beside the results (--profile-dir).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# tinygrad_yolo before NumPy: the package sets OpenBLAS's thread timeout, read when NumPy loads it.
from tinygrad_yolo.bench import (B, C, CONFIGS, S, random_targets, time_steps,  # noqa: E402
                                 training_step)

import numpy as np  # noqa: E402


def rss_mb():
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---- PyTorch: the identical network --------------------------------------------------------
def torch_step_fn(cfg, device="cpu"):
    import torch

    if device == "cpu":
        torch.set_num_threads(2)
    torch.manual_seed(0)
    model = torch_model(cfg).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    images = rng.random((cfg["batch"], 3, cfg["img"], cfg["img"]), dtype=np.float32)
    x = torch.from_numpy(images).to(device)
    t = torch.from_numpy(random_targets(rng, cfg["batch"])).to(device)
    rows = torch.arange(S, dtype=torch.float32, device=device).view(1, S, 1, 1)
    cols = torch.arange(S, dtype=torch.float32, device=device).view(1, 1, S, 1)

    def step():
        loss = torch_yolo_loss(model(x).permute(0, 2, 3, 1), t, rows, cols)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def torch_model(cfg):
    """The YOLO-ResNet-18 of tinygrad_yolo.bench at ``cfg``'s width and input size."""
    import torch
    from torch import nn

    def ch(c):
        return max(1, int(round(c * cfg["width"])))

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    widths = [ch(64), ch(128), ch(256), ch(512)]
    layers = [nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    cin = widths[0]
    for i, w in enumerate(widths):
        layers += [Block(cin, w, 1 if i == 0 else 2), Block(w, w, 1)]
        cin = w
    size = cfg["img"] // 32
    while size > S:  # halve the map to S x S, as YOLOv1 does (448 -> 14 -> 7)
        layers += [nn.Conv2d(cin, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin), nn.LeakyReLU(0.1)]
        size //= 2
    hidden = max(8, int(round(256 * cfg["width"])))
    layers += [nn.Conv2d(cin, hidden, 3, 1, 1, bias=False), nn.BatchNorm2d(hidden),
               nn.LeakyReLU(0.1), nn.Conv2d(hidden, B * 5 + C, 1)]
    return nn.Sequential(*layers)


def torch_yolo_loss(pred, t, rows, cols):
    """The same formula as tinygrad_yolo.detection.YOLOv1Loss, in PyTorch: ``pred`` (N, S, S,
    B*5 + C), ``t`` the encoded targets, ``rows``/``cols`` the cells' indices."""
    import torch

    def xyxy(b):  # (..., 4) of x, y, sqrt w, sqrt h -> image frame
        cx, cy = (cols + b[..., 0]) / S, (rows + b[..., 1]) / S
        w, h = b[..., 2] ** 2, b[..., 3] ** 2
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)

    def area(z):
        return (z[..., 2] - z[..., 0]).clamp(min=0) * (z[..., 3] - z[..., 1]).clamp(min=0)

    n = pred.shape[0]
    boxes = pred[..., :B * 5].reshape(n, S, S, B, 5)
    true = torch.cat([t[..., 0:2], t[..., 2:4].sqrt()], -1).unsqueeze(3)
    with torch.no_grad():
        p, q = xyxy(boxes[..., :4]), xyxy(true)
        lt, rb = torch.maximum(p[..., :2], q[..., :2]), torch.minimum(p[..., 2:], q[..., 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        iou = inter / (area(p) + area(q) - inter).clamp(min=1e-12)
        err = ((boxes[..., :4] - true) ** 2).sum(-1)
        best = torch.where(iou == iou.max(-1, keepdim=True).values, err, torch.inf).argmin(-1)
        resp = (torch.arange(B, device=pred.device) == best.unsqueeze(-1)) & (t[..., 4:5] > 0)
        resp = resp.float()
    sq = (boxes[..., :4] - true) ** 2
    conf = boxes[..., 4]
    loss = (5 * (sq[..., 0:2].sum(-1) * resp).sum() + 5 * (sq[..., 2:4].sum(-1) * resp).sum()
            + ((conf - iou) ** 2 * resp).sum() + 0.5 * (conf ** 2 * (1 - resp)).sum()
            + ((pred[..., B * 5:] - t[..., 5:]) ** 2 * t[..., 4:5]).sum())
    return loss / n


def worker(framework, config, steps, warmup, profile_path):
    cfg = CONFIGS[config]
    if framework == "ours":  # as the tinygrad-yolo command does (see tinygrad_yolo/memory.py)
        from tinygrad_yolo.memory import keep_freed_memory
        keep_freed_memory()
    step = (training_step if framework == "ours" else torch_step_fn)(cfg)
    base = current_rss_mb()  # libraries, model and data loaded; no step run yet
    _, times = time_steps(step, steps, warmup)
    result = {"times": times, "peak_rss_mb": rss_mb(), "rss_before_steps_mb": base}
    if profile_path and framework == "ours":
        import tinygrad_yolo as tg
        with tg.profile() as prof:
            step()
        with open(profile_path, "w") as f:
            f.write(f"# per-op profile of one training step, ours, {config} {cfg}\n"
                    f"{prof.table()}\n")
    print(json.dumps(result))


def run_worker(framework, config, steps, warmup, profile_path=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--configs", config,
           "--steps", str(steps), "--warmup", str(warmup)]
    if profile_path:
        cmd += ["--profile", profile_path]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} {config} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch():
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except Exception:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="r18_b8,r18_b16,tiny_b32",
                    help=f"from {', '.join(CONFIGS)}")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating ours/PyTorch rounds")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--profile-dir", default="benchmarks/results")
    ap.add_argument("--worker", choices=["ours", "torch"])
    ap.add_argument("--profile")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.configs, args.steps, args.warmup, args.profile)

    frameworks = ["ours"] + (["torch"] if have_torch() and not args.no_torch else [])
    os.makedirs(args.profile_dir, exist_ok=True)
    for config in args.configs.split(","):
        runs = {f: [] for f in frameworks}
        for r in range(args.rounds):
            for f in frameworks:
                profile = None
                if f == "ours" and r == 0:  # the first round's step, profiled
                    profile = os.path.join(args.profile_dir, f"profile_{config}.txt")
                runs[f].append(run_worker(f, config, args.steps, args.warmup, profile))
        batch = CONFIGS[config]["batch"]
        row = {"config": config, **CONFIGS[config], "steps": args.steps * args.rounds}
        for f, rs in runs.items():
            times = [t for r in rs for t in r["times"]]
            med = statistics.median(times)
            row[f"{f}_s_per_step"] = round(med, 4)
            row[f"{f}_images_per_s"] = round(batch / med, 2)
            row[f"{f}_peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in rs), 1)
            # what training adds on top of libraries + model + data: activations, gradients, buffers
            added = max(r["peak_rss_mb"] - r["rss_before_steps_mb"] for r in rs)
            row[f"{f}_step_mem_mb"] = round(added, 1)
        if "torch" in runs:
            row["ratio_time"] = round(row["ours_s_per_step"] / row["torch_s_per_step"], 3)
            row["ratio_peak_rss"] = round(row["ours_peak_rss_mb"] / row["torch_peak_rss_mb"], 3)
            torch_mem = max(row["torch_step_mem_mb"], 1e-9)
            row["ratio_step_mem"] = round(row["ours_step_mem_mb"] / torch_mem, 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
