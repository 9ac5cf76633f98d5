"""Pretrained versus from scratch: how much sooner `train --pretrained` reaches a given mAP.

No machine here can download ImageNet weights, so the pretrained backbone is made here:

  1. source    `tinygrad-yolo train` on the synthetic set (or --source-data) for --source-steps
  2. backbone  `tinygrad-yolo export --weights SOURCE/best.npz --format torchvision`
               -> backbone.safetensors, torchvision's layout
  3. target    `tinygrad-yolo train --data DATA` twice with the same options and seed: from
               scratch, and with --pretrained backbone.safetensors

Every run is the command line a user types (subprocesses), in folders under --out. Prints one
JSON line per run (its per-evaluation step, seconds and mAPs, the final VOC mAP@0.5 and COCO
mAP@[.5:.95], training seconds), then a summary line: per target run the first evaluation
reaching --target-map (mAP@0.5) and its time, and the speed-up. The source run's time is the
price of the pretrained start; it is reported too.

    python benchmarks/bench_pretrained.py --data ../shared/data/dice --target-map 0.4
    python benchmarks/bench_pretrained.py --data D --source-steps 20 --steps 20 \\
        --args "--img-size 64 --grid 2 --batch-size 4" --source-args "--img-size 64 --grid 2"
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path


def tinygrad_yolo(*args, log=None):
    """Run `tinygrad-yolo ARGS` with this Python; its output into ``log``; seconds taken."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}  # as users run it
    started = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as out:
        done = subprocess.run([sys.executable, "-m", "tinygrad_yolo.cli", *map(str, args)],
                              stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = Path(log).read_text().strip().splitlines()[-3:] if log else []
        raise SystemExit(f"bench_pretrained: tinygrad-yolo {' '.join(map(str, args[:2]))} failed "
                         f"(exit {done.returncode}): {' | '.join(tail)}")
    return time.perf_counter() - started


def run_record(name, run, seconds):
    """A run's evaluations (from metrics.jsonl) and final numbers (metrics.json)."""
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluations = [{"step": e["step"], "seconds": round(e["seconds"], 1), "map50": e["map50"],
                    "map50_95": e.get("map50_95")}
                   for e in events if e["event"] == "epoch" and e.get("map50") is not None]
    final = json.loads((run / "metrics.json").read_text())
    return {"run": name, "folder": str(run), "evaluations": evaluations,
            "final_map50": final["map50"], "final_map50_95": final.get("map50_95"),
            "train_seconds": round(final["train_seconds"], 1),
            "command_seconds": round(seconds, 1)}


def first_reaching(record, target):
    """The first evaluation with mAP@0.5 >= target, or None."""
    return next((e for e in record["evaluations"]
                 if e["map50"] is not None and e["map50"] >= target), None)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="the dataset to fine-tune on")
    p.add_argument("--source-data", default=None,
                   help="the data to pretrain the backbone on (default: the synthetic set)")
    p.add_argument("--source-steps", type=int, default=1180, help="steps of the source run")
    p.add_argument("--steps", type=int, default=None,
                   help="steps of each target run (default: train's own choice)")
    p.add_argument("--target-map", type=float, default=0.4, help="the mAP@0.5 to time")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--width", default="0.25")
    p.add_argument("--seed", default="0")
    p.add_argument("--args", default="", help="more train options for the target runs")
    p.add_argument("--source-args", default="", help="more train options for the source run")
    p.add_argument("--out", default="runs/bench_pretrained", help="folder for the runs and logs")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = ["--backbone", a.backbone, "--width", a.width, "--seed", a.seed]

    source = out / "source"
    data = ["--data", a.source_data] if a.source_data else []
    seconds = tinygrad_yolo("train", *data, *model, "--steps", a.source_steps, "--out", source,
                            "--exist-ok", *shlex.split(a.source_args), log=out / "source.log")
    print(json.dumps(run_record("source", source, seconds)), flush=True)
    backbone = out / "backbone.safetensors"
    tinygrad_yolo("export", "--weights", source / "best.npz", "--format", "torchvision", "--out",
                  backbone)

    target = ["--data", a.data, *model, *(["--steps", a.steps] if a.steps else []),
              *shlex.split(a.args)]
    records = {}
    for name, extra in (("scratch", []), ("pretrained", ["--pretrained", backbone])):
        run = out / name
        seconds = tinygrad_yolo("train", *target, *extra, "--out", run, "--exist-ok",
                                log=out / f"{name}.log")
        records[name] = run_record(name, run, seconds)
        print(json.dumps(records[name]), flush=True)

    reached = {n: first_reaching(r, a.target_map) for n, r in records.items()}
    source_seconds = json.loads((source / "metrics.json").read_text())["train_seconds"]
    summary = {"target_map50": a.target_map, "source_train_seconds": round(source_seconds, 1)}
    for name, e in reached.items():
        summary[f"{name}_reaches_at"] = None if e is None else {"step": e["step"],
                                                                 "seconds": e["seconds"]}
    if reached["scratch"] and reached["pretrained"]:
        summary["speedup"] = round(reached["scratch"]["seconds"]
                                   / max(reached["pretrained"]["seconds"], 1e-9), 2)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
