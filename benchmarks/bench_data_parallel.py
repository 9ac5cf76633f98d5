"""Data-parallel training on this machine's cores: images/s of the default training step for
1 process x 2 BLAS threads at the global batch against 2 MPI ranks x 1 thread at half of it each,
the ranks exchanging their gradients (one flat buffer, or buckets during the backward) and
averaging their batch-norm statistics, as ``train --nproc 2`` does.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_data_parallel.py
    ... --rounds 3 --steps 5 --modes one,flat,buckets,none

Rounds alternate the modes, so the machine's noise hits each alike. One JSON line per
measurement and one summary line per mode on stdout. "none" is 2 ranks that exchange nothing:
the compute alone, what the exchange costs is the difference; "one1" is 1 process x 1 thread
(how far 2 ranks scale from one core). Needs the dist extra for ranks.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

DEFAULT = dict(width=0.25, img=224, batch=32)  # what `tinygrad-yolo train` trains by default


def build_step(batch, exchange, comm):
    """One training step of the default model on ``batch`` images, the exchange included."""
    from tinygrad_yolo import distributed as dist
    from tinygrad_yolo import optim
    from tinygrad_yolo.bench import B, C, S, random_targets
    from tinygrad_yolo.detection import YOLOv1Loss
    from tinygrad_yolo.models import YOLOv1
    from tinygrad_yolo.tensor import Tensor
    from tinygrad_yolo.utils import seed

    seed(0)
    model = YOLOv1("resnet18", S=S, B=B, C=C, img_size=DEFAULT["img"], width=DEFAULT["width"],
                   head="conv")
    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
    crit = YOLOv1Loss(S=S, B=B, C=C, parts_on_host=False)
    rng = np.random.default_rng(comm.rank)
    x = Tensor(rng.random((batch, 3, DEFAULT["img"], DEFAULT["img"]), dtype=np.float32))
    t = random_targets(rng, batch)
    buckets = dist.GradientBuckets(model.parameters(), comm) if exchange == "buckets" else None
    flat = [None]

    def step():
        loss, _ = crit(model(x), t)
        opt.zero_grad()
        loss.backward()
        if exchange == "buckets":
            buckets.finish()
        elif exchange == "flat":
            flat[0] = dist.average_gradients(model.parameters(), comm, flat[0])
        if exchange != "none":
            dist.average_buffers(model, comm)
        opt.step()
        return float(loss.data)
    return step


def worker(mode, batch, steps, warmup):
    from tinygrad_yolo.distributed import world
    from tinygrad_yolo.memory import keep_freed_memory
    keep_freed_memory()  # as the tinygrad-yolo command does
    comm = world()
    step = build_step(batch // comm.size, mode if comm.size > 1 else "none", comm)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        comm.barrier()  # every rank starts the step together: the time is the slowest rank's
        t0 = time.perf_counter()
        step()
        comm.barrier()
        times.append(time.perf_counter() - t0)
    if comm.rank == 0:
        print(json.dumps({"times": times}))


def run(mode, batch, steps, warmup):
    """(images/s, step times) of one measurement: a fresh process or a fresh set of ranks."""
    one = mode in ("one", "one1")
    threads = "2" if mode == "one" else "1"
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--batch", str(batch),
           "--steps", str(steps), "--warmup", str(warmup)]
    if not one:
        from tinygrad_yolo.distributed.launch import check_installed
        cmd = [check_installed(2), "-n", "2", sys.executable, "-m", "mpi4py"] + cmd[1:]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    times = json.loads(done.stdout.strip().splitlines()[-1])["times"]
    return batch / statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="one,one1,flat,buckets,none",
                    help="one (1 process x 2 threads), one1 (x 1 thread), flat, buckets, none "
                         "(2 ranks x 1 thread)")
    ap.add_argument("--batch", type=int, default=DEFAULT["batch"], help="the global batch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--worker", choices=["one", "one1", "flat", "buckets", "none"])
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.batch, args.steps, args.warmup)
    modes = args.modes.split(",")
    rates = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes:
            rate, times = run(mode, args.batch, args.steps, args.warmup)
            rates[mode].append(rate)
            line = {"round": r, "mode": mode, "batch": args.batch, "images_per_s": round(rate, 2),
                    "step_s": [round(t, 4) for t in times]}
            print(json.dumps(line), flush=True)
    for mode in modes:
        rate = statistics.median(rates[mode])
        row = {"mode": mode, **DEFAULT, "batch": args.batch, "rounds": args.rounds,
               "images_per_s_min": round(min(rates[mode]), 2),
               "images_per_s_max": round(max(rates[mode]), 2),
               "images_per_s_median": round(rate, 2)}
        if "one" in rates and mode != "one":
            row["speedup_median"] = round(rate / statistics.median(rates["one"]), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
