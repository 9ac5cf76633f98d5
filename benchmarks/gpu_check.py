"""The GPU check: run once on a CUDA machine from the repository root.

    PYTHONPATH=. python benchmarks/gpu_check.py --logs gpu_logs            # on the GPU machine
    python benchmarks/gpu_check.py --dry-run --logs /tmp/gpu_dry   # here: the code paths on CPU

Sections (each logs to --logs/<section>.log; the summary table is printed last):
 1. tests: tests/test_gpu.py and the kernel tests on device="cuda" (every op vs NumPy, gradchecks
    in float64, the residual split), then `tinygrad-yolo gradcheck --device cuda`.
 2. kernels: im2col/col2im GB/s at ResNet-18 shapes (batch 32) vs a device-to-device copy
    (benchmarks/bench_kernels_gpu.py; CUDA events, warm-up, medians).
 3. conv: conv2d forward+backward at those shapes, ours vs torch.nn.functional.conv2d, float32,
    TF32 off on both sides (CuPy's cuBLAS runs plain FP32 unless CUPY_TF32=1; torch's TF32
    switches are set to False here).
 4. step: a YOLO-ResNet18 training step at 448², batch 32: ours vs the identical PyTorch model in
    eager mode (benchmarks/bench_step.py's network); images/s and peak GPU memory.
 5. train: `tinygrad-yolo train --device cuda` (default configuration; stopped after
    --train-seconds), mAP@0.5.
 6. launch: device calls and host syncs of one step (tinygrad_yolo/testing/launch_count.py: the CUDA
    code path against a counting NumPy stand-in for CuPy; runs on the CPU, seconds).
 7. fused: the fused batch-norm (forward 3 kernels, backward 3) and optimizer (1 kernel) at
    ResNet-18 shapes, batch 32: GB/s (bytes that must move, once) vs a device copy, and max error
    against the CPU reference. In a dry run through testing/fake_cupy (timings meaningless there).
The step section also reports reserved and in-use memory for both frameworks and the kernels per
step (ours: section 6's count; PyTorch: CUDA kernels in torch.profiler).

Nothing is downloaded: the machine needs CuPy, NumPy, pytest, hypothesis and (for 3-4) PyTorch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

CONV_CASES = [  # name, (C, H, W), K, kernel, stride, padding
    ("conv1_7x7_s2", (3, 224, 224), 64, 7, 2, 3),
    ("layer1_3x3", (64, 56, 56), 64, 3, 1, 1),
    ("layer2_3x3", (128, 28, 28), 128, 3, 1, 1),
    ("layer3_3x3", (256, 14, 14), 256, 3, 1, 1),
    ("layer4_3x3", (512, 7, 7), 512, 3, 1, 1),
    ("proj_1x1_s2", (64, 56, 56), 128, 1, 2, 0),
]


def sh(cmd, log, timeout):
    """Run a shell command, tee its output to ``log``; returns (exit code, seconds)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, shell=True, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                timeout=timeout, env=dict(os.environ, PYTHONPATH=ROOT)).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[gpu_check] timed out after {timeout} s\n")
            rc = 124
    return rc, time.perf_counter() - t0


def guarded(log, fn, *args):
    """fn(*args) -> (result, None), or (None, the error's last line) with its traceback in ``log``:
    one broken section must not cost the sections after it on a machine lent for minutes."""
    try:
        return fn(*args), None
    except Exception as e:  # noqa: BLE001 - reported, not swallowed
        log.write(traceback.format_exc())
        return None, f"{type(e).__name__}: {e}".splitlines()[0]


def tail(path, n=3):
    with open(path) as f:
        return [line.rstrip() for line in f.readlines()[-n:]]


class Timer:
    """Median milliseconds of fn(): CUDA events on the GPU, perf_counter on the CPU (dry run)."""

    def __init__(self, device):
        self.device = device
        if device == "cuda":
            from tinygrad_yolo.backend import cupy_module
            self.cp = cupy_module()

    def __call__(self, fn, warmup=3, repeats=10):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            if self.device == "cuda":
                start, end = self.cp.cuda.Event(), self.cp.cuda.Event()
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(self.cp.cuda.get_elapsed_time(start, end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)


def conv_section(device, batch, out):
    """Ours vs torch conv2d forward+backward at the ResNet-18 shapes (float32, TF32 off)."""
    import numpy as np

    import tinygrad_yolo as tg
    from tinygrad_yolo.nn import functional as F
    timer = Timer(device)
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        tdev = "cuda" if device == "cuda" else "cpu"
    except ImportError:
        torch = None
    rows = []
    for name, (c, h, w), k, r, s, p in CONV_CASES:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, c, h, w), dtype=np.float32)
        wt = rng.standard_normal((k, c, r, r), dtype=np.float32) * 0.05
        xt = tg.Tensor(x, requires_grad=True, device=device)
        wtt = tg.Tensor(wt, requires_grad=True, device=device)
        gy = None

        def ours():
            nonlocal gy
            y = F.conv2d(xt, wtt, stride=s, padding=p)
            if gy is None:
                gy = tg.Tensor(np.ones(y.shape, np.float32), device=device)
            y.backward(gy)
        row = {"case": name, "batch": batch, "ours_ms": round(timer(ours), 3)}
        if torch is not None:
            tx = torch.from_numpy(x).to(tdev).requires_grad_()
            tw = torch.from_numpy(wt).to(tdev).requires_grad_()

            def theirs():
                y = torch.nn.functional.conv2d(tx, tw, stride=s, padding=p)
                y.backward(torch.ones_like(y))
                if tdev == "cuda":
                    torch.cuda.synchronize()
            row["torch_ms"] = round(timer(theirs), 3)
            row["ratio"] = round(row["ours_ms"] / row["torch_ms"], 3)
        row["tf32"] = False
        rows.append(row)
        out.write(json.dumps(row) + "\n")
        out.flush()
    return rows


BN_CASES = [("layer1", (64, 56, 56)), ("layer2", (128, 28, 28)), ("layer3", (256, 14, 14)),
            ("layer4", (512, 7, 7))]


def fused_section(device, batch, out):
    """Fused batch norm (+ReLU +residual) and optimizer steps: GB/s against a device copy of the
    same bytes, and the largest error against the CPU reference (float32)."""
    import contextlib

    import numpy as np

    stand_in = contextlib.nullcontext()
    if device == "cpu":  # the dry run: the CUDA code path through the counting stand-in
        from tinygrad_yolo.testing import fake_cupy
        stand_in = fake_cupy.installed()
    rows = []
    with stand_in:
        timer = Timer("cuda")
        for name, chw in BN_CASES:
            rows.append(_fused_bn_case(name, chw, batch, timer))
            out.write(json.dumps(rows[-1]) + "\n")
            out.flush()
        rng = np.random.default_rng(1)
        for opt_name in ("sgd_momentum", "adamw"):
            rows.append(_fused_optimizer_case(opt_name, device, rng, timer))
            out.write(json.dumps(rows[-1]) + "\n")
    return rows


def _fused_bn_case(name, chw, batch, timer):
    """One batch-norm shape: the fused kernels timed, and the whole op against the CPU."""
    import numpy as np

    import tinygrad_yolo as tg
    from tinygrad_yolo import backend
    from tinygrad_yolo.nn import functional as F
    cp, fused = backend.cupy_module(), backend.cuda_kernels("fused")
    c, h, w = chw
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, c, h, w), dtype=np.float32) * 2 + 1
    r = rng.standard_normal(x.shape, dtype=np.float32)
    g = rng.standard_normal(x.shape, dtype=np.float32)
    wgt = rng.random(c, dtype=np.float32) + 0.5
    bias = rng.standard_normal(c, dtype=np.float32)
    dx3, dr3, dg3 = (cp.asarray(a.reshape(batch, c, h * w)) for a in (x, r, g))
    dw, db = cp.asarray(wgt), cp.asarray(bias)
    rm, rv = cp.zeros(c, np.float32), cp.ones(c, np.float32)
    state = {}

    def fwd():
        state["y"], state["mean"], state["invstd"] = fused.batch_norm_forward_gpu(
            dx3, dw, db, rm, rv, True, residual=dr3, relu=True)

    def bwd():
        fused.batch_norm_backward_gpu(dg3, dx3, state["y"], state["mean"], state["invstd"], dw,
                                      True, relu=True, need_residual=True)
    nbytes = x.nbytes
    copy_ms = timer(lambda: dx3.copy())
    fwd_ms, bwd_ms = timer(fwd), timer(bwd)
    # errors: the whole op on the device against the CPU reference
    outs = {}
    for dev in ("cpu", "cuda"):
        ts = [tg.Tensor(a, requires_grad=True, device=dev) for a in (x, wgt, bias, r)]
        y = F.batch_norm(ts[0], None, None, ts[1], ts[2], training=True, residual=ts[3], relu=True)
        y.backward(tg.Tensor(g, device=dev))
        outs[dev] = [y.numpy()] + [t.grad.numpy() for t in ts]
    err = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
              for a, b in zip(outs["cuda"], outs["cpu"]))
    return {"case": f"bn_relu_residual_{name}", "batch": batch,
            # forward reads x and the residual and writes y; backward reads g, x, y twice
            # (statistics pass and dx pass) and writes dx and the residual's gradient
            "fwd_ms": round(fwd_ms, 4), "fwd_gb_s": round(3 * nbytes / fwd_ms / 1e6, 1),
            "bwd_ms": round(bwd_ms, 4), "bwd_gb_s": round(8 * nbytes / bwd_ms / 1e6, 1),
            "copy_gb_s": round(2 * nbytes / copy_ms / 1e6, 1), "max_rel_err_vs_cpu": err}


def _fused_optimizer_case(opt_name, device, rng, timer):
    """One optimizer's step of one large parameter: timed on the device, against the CPU."""
    import numpy as np

    import tinygrad_yolo as tg
    from tinygrad_yolo import backend, optim
    make = {"sgd_momentum": lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=5e-4),
            "adamw": lambda ps: optim.AdamW(ps, lr=1e-3)}[opt_name]
    size = 11_000_000 if device == "cuda" else 1000  # ResNet-18's parameter count, in one array
    p0 = rng.standard_normal(size, dtype=np.float32)
    g0 = rng.standard_normal(size, dtype=np.float32)
    results = {}
    for dev in ("cpu", "cuda"):
        p = tg.nn.Parameter(backend.to_device(p0.copy(), dev))
        p.grad = tg.Tensor(backend.to_device(g0.copy(), dev))
        opt = make([p])
        opt.step()
        results[dev] = p.numpy()
        if dev == "cuda":
            ms = timer(opt.step)
    err = float(np.abs(results["cuda"] - results["cpu"]).max())
    streams = 4 if opt_name == "sgd_momentum" else 7  # arrays read + written per element
    return {"case": f"{opt_name}_step", "elements": size, "ms": round(ms, 4),
            "gb_s": round(streams * 4 * size / ms / 1e6, 1), "max_abs_err_vs_cpu": err}


class _PeakInUse:
    """An op observer sampling the memory pool's in-use bytes after every op (a host call, no
    sync)."""

    def __init__(self, pool):
        self.pool, self.peak = pool, 0

    def sample(self, *args):
        self.peak = max(self.peak, self.pool.used_bytes())

    before_forward = before_backward = after_forward = after_backward = sample

    def __enter__(self):
        from tinygrad_yolo.function import Function
        Function._observers.append(self)
        return self

    def __exit__(self, *exc):
        from tinygrad_yolo.function import Function
        Function._observers.remove(self)


def torch_kernels_per_step(torch, tstep):
    """CUDA kernels one PyTorch step launches (torch.profiler), or None where it can't tell."""
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            tstep()
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA"))
    except Exception:  # noqa: BLE001 - a profiler missing on this build is not a failed check
        return None


def step_section(device, config, steps, out):
    """Ours vs PyTorch eager: one YOLO-ResNet18 training step; images/s and peak GPU memory."""
    from bench_step import torch_step_fn

    from tinygrad_yolo.bench import CONFIGS, time_steps, training_step
    cfg = CONFIGS[config]
    row = {"config": config, **cfg}
    step = training_step(cfg, device)
    med, _ = time_steps(step, steps=steps, warmup=2)
    row.update(ours_s=round(med, 4), ours_img_s=round(cfg["batch"] / med, 1))
    if device == "cuda":
        from tinygrad_yolo.backend import cupy_module
        pool = cupy_module().get_default_memory_pool()
        row["ours_peak_mem_mb"] = round(pool.total_bytes() / 2**20, 1)  # reserved by the pool
        with _PeakInUse(pool) as peak:
            step()
        row["ours_in_use_peak_mb"] = round(peak.peak / 2**20, 1)  # sampled at op boundaries
        # (the dry run has the launch section for this); the calls don't depend on the size
        from tinygrad_yolo.testing import launch_count
        counted = launch_count.measure(img=128, batch=2)["step"]
        row.update(ours_kernels_per_step=counted["calls"], ours_syncs_per_step=counted["syncs"])
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        # float32 on both sides: cuDNN's convolutions default to TF32 on this GPU, and a run
        # without the conv section (which also switches it off) once measured TF32 instead
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        row["tf32"] = False
        tstep = torch_step_fn(cfg, "cuda" if device == "cuda" else "cpu")
        med_t, _ = time_steps(tstep, steps=steps, warmup=2)
        row.update(torch_s=round(med_t, 4), torch_img_s=round(cfg["batch"] / med_t, 1),
                   ratio_time=round(med / med_t, 3))
        if device == "cuda":
            row["torch_peak_mem_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
            row["torch_in_use_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            row["ratio_mem"] = round(row["ours_peak_mem_mb"] / row["torch_peak_mem_mb"], 3)
            row["torch_kernels_per_step"] = torch_kernels_per_step(torch, tstep)
    out.write(json.dumps(row) + "\n")
    import tinygrad_yolo as tg
    with tg.profile() as prof:  # where our step's time goes (CUDA events per op, read once)
        step()
    out.write(f"# per-op profile of one step, ours, {config}\n{prof.table()}\n")
    return row


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", default=os.environ.get("GPU_CHECK_LOGS", "gpu_logs"))
    ap.add_argument("--dry-run", action="store_true",
                    help="run the code paths on the CPU at tiny sizes")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--train-seconds", type=int, default=240,
                    help="the train section is stopped after this")
    ap.add_argument("--train-args", default="",
                    help='extra `tinygrad-yolo train` arguments, e.g. "--workers 6"')
    ap.add_argument("--train-out", default="/tmp/gpu_check_train", help="the training run's folder")
    ap.add_argument("--pytest-args", default="",
                    help='extra pytest arguments, e.g. "-n 8" (pytest-xdist)')
    ap.add_argument("--tests", default="tests/test_gpu.py tests/test_kernels.py",
                    help="what pytest runs")
    ap.add_argument("--tests-timeout", type=int, default=900,
                    help="seconds for the test suite (then gradcheck)")
    return ap.parse_args(argv)


# ---- the sections: each returns its rows of the summary (name, exit code, seconds, result) ------
def run_tests(args, logs, device, py):
    rc, sec = sh(f"{py} -m pytest -q -rfE --tb=short -p no:cacheprovider {args.pytest_args} "
                 f"{args.tests}", f"{logs}/tests.log", args.tests_timeout)
    rows = [("tests (GPU suite)", rc, sec, tail(f"{logs}/tests.log", 1)[0])]
    examples = 3 if args.dry_run else 20
    rc, sec = sh(f"{py} -m tinygrad_yolo.cli gradcheck --device {device} --examples {examples}",
                 f"{logs}/gradcheck.log", min(args.tests_timeout, 120))
    return rows + [(f"gradcheck --device {device}", rc, sec, tail(f"{logs}/gradcheck.log", 1)[0])]


def run_kernels(args, logs, device, py):
    if args.dry_run:
        return [("kernel bandwidth", 0, 0.0, "skipped in a dry run (needs CUDA events)")]
    rc, sec = sh(f"{py} benchmarks/bench_kernels_gpu.py --batch 32", f"{logs}/kernels.log", 90)
    return [("kernel bandwidth", rc, sec, f"see {logs}/kernels.log")]


def logged(logs, name, section, *args):
    """section(*args, out) writing to logs/<name>.log, guarded: (result, error, seconds)."""
    t0 = time.perf_counter()
    with open(f"{logs}/{name}.log", "w") as f:
        result, error = guarded(f, section, *args, f)
    return result, error, time.perf_counter() - t0


def run_conv(args, logs, device, py):
    rows, error, sec = logged(logs, "conv", conv_section, device, 2 if args.dry_run else 32)
    worst = max((r.get("ratio", 0) for r in rows or []), default=0)
    return [("conv2d fwd+bwd vs torch", int(error is not None), sec,
             error or f"worst ratio ours/torch {worst}")]


def run_step(args, logs, device, py):
    config = "tiny_b32" if args.dry_run else "r18_448_b32"
    row, error, sec = logged(logs, "step", step_section, device, config,
                             2 if args.dry_run else 10)
    return [("training step", int(error is not None), sec, error or json.dumps(row))]


def run_train(args, logs, device, py):
    extra = "--epochs 1 --max-steps 2 --eval-max-images 32" if args.dry_run else ""
    rc, sec = sh(f"{py} -m tinygrad_yolo.cli train --device {device} --out {args.train_out} "
                 f"--no-progress {args.train_args} {extra}", f"{logs}/train.log",
                 args.train_seconds)
    return [("train (default config)", rc, sec, tail(f"{logs}/train.log", 1)[0])]


def run_launch(args, logs, device, py):
    rc, sec = sh(f"{py} -m tinygrad_yolo.testing.launch_count", f"{logs}/launch.log", 300)
    return [("device calls per step", rc, sec, " | ".join(tail(f"{logs}/launch.log", 20)[1:3]))]


def run_fused(args, logs, device, py):
    rows, error, sec = logged(logs, "fused", fused_section, device, 2 if args.dry_run else 32)
    worst = max((r.get("max_rel_err_vs_cpu", 0) for r in rows or []), default=0)
    return [("fused BN / optimizer", int(error is not None), sec,
             error or f"worst BN rel. error vs CPU {worst:.2e}; see {logs}/fused.log")]


SECTIONS = {"tests": run_tests, "kernels": run_kernels, "conv": run_conv, "step": run_step,
            "train": run_train, "launch": run_launch, "fused": run_fused}


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.logs, exist_ok=True)
    logs = os.path.abspath(args.logs)
    device = "cpu" if args.dry_run else "cuda"
    wanted = args.sections.split(",")
    summary = []
    for name, run in SECTIONS.items():  # in this order, whatever the order asked
        if name in wanted:
            summary += run(args, logs, device, sys.executable)
    print(f"\n{'section':<28}{'rc':>4}{'seconds':>9}  result")
    for name, rc, sec, result in summary:
        print(f"{name:<28}{rc:>4}{sec:>9.1f}  {result[:150]}")
    return max((rc for _, rc, _, _ in summary), default=0)


if __name__ == "__main__":
    sys.exit(main())
