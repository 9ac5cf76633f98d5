"""`tinygrad-yolo train --data <set>` with no other flag, timed as a user would run it, on the
real datasets beside the repository (../shared/data) and the synthetic default.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_real_data.py
    python benchmarks/bench_real_data.py --sets dice --extra "--device cuda --width 1.0 --img-size 448"

Prints one JSON line per dataset: the layout detected, images and classes, the steps the recipe
chose, the whole command's time, mAP@0.5 and the per-class APs, the objects lost to the
one-object-per-cell rule, and the val mAP against steps. Targets (issue 15): dice and
microcontrollers >= 0.80, synthetic >= 0.90, each within 15 minutes on 2 CPU cores. Not a test.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
SETS = {"dice": os.path.join(SHARED, "dice"), "microcontrollers": os.path.join(SHARED, "microcontrollers"),
        "synthetic": None}


def run(name, path, extra, out_root):
    out = os.path.join(out_root, name)
    cmd = [sys.executable, "-m", "tinygrad_yolo.cli", "train", "--out", out, "--no-progress"]
    cmd += ([] if path is None else ["--data", path]) + shlex.split(extra)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"set": name, "error": proc.stderr.strip().splitlines()[-1:], "seconds": round(seconds, 1)}
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if line.strip()]
    curve = [(r["step"], round(r["map50"], 4)) for r in rows if r.get("event") == "epoch" and r.get("map50") is not None]
    cfg = metrics["config"]
    return {"set": name, "layout": metrics["data"]["layout"], "train_images": rows[0]["train_images"],
            "val_images": metrics["images"], "classes": len(metrics["classes"]), "img_size": cfg["img_size"],
            "grid": cfg["S"], "steps": metrics["steps"], "epochs": metrics["epochs"], "seconds": round(seconds, 1),
            "train_seconds": round(metrics["train_seconds"], 1), "map50": metrics["map50"],
            "map50_11pt": metrics["map50_11pt"], "best_step": metrics["best_step"],
            "ap": dict(zip(metrics["classes"], metrics["ap"])),
            "dropped_objects": metrics["dropped_objects"], "objects": metrics["objects"], "val_curve": curve,
            "extra": extra}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default="dice,microcontrollers,synthetic", help=f"comma-separated, from {', '.join(SETS)}")
    p.add_argument("--extra", default="", help="more train flags for every set (default: none, as a user would)")
    p.add_argument("--out", default=None, help="where the run folders go (default: a temporary folder)")
    args = p.parse_args()
    out_root = args.out or tempfile.mkdtemp(prefix="bench_real_data_")
    for name in [s for s in args.sets.split(",") if s]:
        if name not in SETS:
            sys.exit(f"unknown set {name!r}; known: {', '.join(SETS)}")
        path = SETS[name]
        if path is not None and not os.path.isdir(path):
            print(json.dumps({"set": name, "error": f"{path} is not here"}), flush=True)
            continue
        print(json.dumps(run(name, path, args.extra, out_root)), flush=True)


if __name__ == "__main__":
    main()
