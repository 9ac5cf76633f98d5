"""Throughput of the data loader alone (JPEG decode + augmentation in background threads).

    python benchmarks/bench_loader.py [--sizes 224,112] [--workers 2] [--batch 32]
                                      [--transform train]

Prints one JSON line per (img_size, workers) config.  The synthetic dataset (160 px JPEGs) is
generated once into data_cache/bench_synthetic_voc.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinygrad_yolo.data import (DataLoader, EvalTransform, TrainTransform,  # noqa: E402
                                VOCDataset, ensure_synthetic_voc)


def measure(ds, img_size, batch, workers, transform, batches, prefetch):
    t = TrainTransform(img_size) if transform == "train" else EvalTransform(img_size)
    loader = DataLoader(ds, batch, t, shuffle=True, drop_last=True, num_workers=workers,
                        prefetch=prefetch)
    it = iter(loader)
    for _ in range(2):  # warm-up: thread start, first allocations
        next(it)
    n = 0
    start = time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:  # next epoch
            it = iter(loader)
            b = next(it)
        n += len(b.ids)
    elapsed = time.perf_counter() - start
    it.close()
    return n / elapsed, 1000 * elapsed / batches


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=os.path.join("data_cache", "bench_synthetic_voc"))
    p.add_argument("--sizes", default="224,112", help="model input sizes, comma-separated")
    p.add_argument("--workers", default="2",
                   help="thread counts, comma-separated (0 = main thread)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=40, help="timed batches per config")
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--transform", choices=("train", "eval"), default="train")
    args = p.parse_args()

    t0 = time.perf_counter()
    ensure_synthetic_voc(args.root, n_train=2000, n_val=400, img_size=160, seed=0)
    gen_s = time.perf_counter() - t0
    ds = VOCDataset(args.root, "train")
    for size in (int(s) for s in args.sizes.split(",")):
        for workers in (int(w) for w in args.workers.split(",")):
            ips, ms = measure(ds, size, args.batch, workers, args.transform, args.batches,
                              args.prefetch)
            print(json.dumps({
                "bench": "loader", "img_size": size, "batch": args.batch, "workers": workers,
                "prefetch": args.prefetch, "transform": args.transform, "source_px": 160,
                "images_per_s": round(ips, 1), "ms_per_batch": round(ms, 2), "cpus": os.cpu_count(),
                "dataset_ready_s": round(gen_s, 2),
            }), flush=True)


if __name__ == "__main__":
    main()
