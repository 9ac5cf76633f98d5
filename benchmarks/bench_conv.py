"""conv2d speed at ResNet-18 layer shapes against NumPy's own GEMM rate (not a test).

    python benchmarks/bench_conv.py [--batch 8] [--repeat 5] [--dtype float32] [--markdown]

One JSON line per case: forward and forward+backward time, effective GFLOP/s
(2*N*K*C*R*S*Ho*Wo per forward, 3x that for forward+backward: the GEMMs for y, dW and dx) and
the ratio to the rate of a square float32 GEMM of about the same size, timed right beside it,
so both numbers see the same machine load. Times are the best over --rounds passes of
--repeat runs each; "other_load" is the share of CPU time other processes took meanwhile.

The stem's input is an image batch that needs no gradient (as in a network), so its backward
computes dW only; its rate still counts 3x the forward FLOPs, as for the other layers.
Targets on the 2-core reference machine: forward+backward >= 0.75x the GEMM rate on the
3x3 layers at 28x28, 14x14, 7x7 and >= 0.6x at 56x56.
"""
import argparse
import json
import os
import sys
import time

# OpenBLAS's worker threads busy-wait for a long while after every GEMM. On a 2-vCPU machine
# that spinning slows the single-threaded NumPy work between GEMMs (im2col tiles, transposes)
# 3-8x. OPENBLAS_THREAD_TIMEOUT=4 (the minimum: 2^4 cycles) makes them sleep at once; it must be
# set before NumPy loads OpenBLAS. --blas-spin keeps the library's default to compare.
if "--blas-spin" not in sys.argv:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygrad_yolo as tg  # noqa: E402
from tinygrad_yolo.nn import functional as F  # noqa: E402

# name, (C, H), (K, R), stride, padding, input needs a gradient, target ratio (fwd+bwd)
CASES = [
    ("layer1 3x3 56x56x64", (64, 56), (64, 3), 1, 1, True, 0.6),
    ("layer2 3x3 28x28x128", (128, 28), (128, 3), 1, 1, True, 0.75),
    ("layer3 3x3 14x14x256", (256, 14), (256, 3), 1, 1, True, 0.75),
    ("layer4 3x3 7x7x512", (512, 7), (512, 3), 1, 1, True, 0.75),
    ("stem 7x7/2 224x224 3->64", (3, 224), (64, 7), 2, 3, False, None),
    ("projection 1x1/2 56x56 64->128", (64, 56), (128, 1), 2, 0, True, None),
]


def best_time(fn, repeat):
    fn()  # warm up: first touch of buffers, BLAS thread start
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_rate(m, k, n, dtype, repeat):
    """GFLOP/s of an (m x k) @ (k x n) GEMM."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype=dtype)
    return 2 * m * k * n / best_time(lambda: np.matmul(a, b, out=out), repeat) / 1e9


class OtherLoad:
    """Share of the machine's CPU time that other processes used while measuring (Linux).
    The machine may be shared: a high value means the numbers are pessimistic."""

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        self.end = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                v = [int(t) for t in f.readline().split()[1:]]
        except OSError:
            return None
        own = sum(os.times()[:4])  # user + system of this process and its children, seconds
        return sum(v), v[3] + v[4], own, os.sysconf("SC_CLK_TCK")

    def share(self):
        if self.start is None:
            return None
        (t0, i0, o0, hz), (t1, i1, o1, _) = self.start, self.end
        total = (t1 - t0) / hz  # CPU-seconds over all cores
        busy_others = (t1 - t0 - (i1 - i0)) / hz - (o1 - o0)
        return round(max(0.0, busy_others) / max(total, 1e-9), 3)


def make_case(name, cin_h, k_r, stride, padding, input_grad, target, batch, dtype):
    """Inputs and the two timed functions of one case."""
    (C, H), (K, R) = cin_h, k_r
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((batch, C, H, H)).astype(dtype), requires_grad=input_grad)
    w = tg.Tensor((rng.standard_normal((K, C, R, R)) * (2 / (C * R * R)) ** 0.5).astype(dtype),
                  requires_grad=True)
    with tg.no_grad():
        y = F.conv2d(x, w, stride=stride, padding=padding)
    g = tg.Tensor(rng.standard_normal(y.shape).astype(dtype))
    flops = 2 * batch * K * C * R * R * y.shape[2] * y.shape[3]

    def forward():
        with tg.no_grad():
            F.conv2d(x, w, stride=stride, padding=padding)

    def forward_backward():
        x.grad = w.grad = None
        F.conv2d(x, w, stride=stride, padding=padding).backward(g)

    n = max(64, int(round((flops / 2) ** (1 / 3) / 64)) * 64)  # square GEMM of about the same size
    info = {"case": name, "input": [batch, C, H, H], "weight": [K, C, R, R], "stride": stride,
            "padding": padding, "dtype": np.dtype(dtype).name, "input_grad": input_grad,
            "target": target, "gemm_n": n,
            # the forward as one plain GEMM, W (K, C*R*S) @ col (C*R*S, N*Ho*Wo): what the conv's
            # GEMMs could reach with no im2col at all (thin shapes run slower than square ones)
            "conv_gemm": [K, C * R * R, batch * y.shape[2] * y.shape[3]]}
    return info, flops, forward, forward_backward


def measure(cases, dtype, repeat, rounds):
    """Best times over ``rounds`` passes through all cases (each the best of ``repeat`` runs),
    so a burst of load from elsewhere spoils one pass, not the result; the GEMM rate is timed
    right before and after each case and its best kept."""
    best = [dict(fwd=float("inf"), all=float("inf"), gemm=0.0, conv_gemm=0.0, load=[])
            for _ in cases]
    for _ in range(rounds):
        for (info, flops, forward, forward_backward), b in zip(cases, best):
            n = info["gemm_n"]
            with OtherLoad() as load:
                b["gemm"] = max(b["gemm"], gemm_rate(n, n, n, dtype, repeat))
                b["fwd"] = min(b["fwd"], best_time(forward, repeat))
                b["all"] = min(b["all"], best_time(forward_backward, repeat))
                b["gemm"] = max(b["gemm"], gemm_rate(n, n, n, dtype, repeat))
                b["conv_gemm"] = max(b["conv_gemm"], gemm_rate(*info["conv_gemm"], dtype, repeat))
            b["load"].append(load.share())
    rows = []
    for (info, flops, _, _), b in zip(cases, best):
        fwd_rate, all_rate = flops / b["fwd"] / 1e9, 3 * flops / b["all"] / 1e9
        target = info["target"]
        rows.append(dict(info, **{
            "fwd_ms": round(b["fwd"] * 1e3, 2), "fwd_gflops": round(fwd_rate, 1),
            "fwd_bwd_ms": round(b["all"] * 1e3, 2), "fwd_bwd_gflops": round(all_rate, 1),
            "gemm_gflops": round(b["gemm"], 1), "conv_gemm_gflops": round(b["conv_gemm"], 1),
            "fwd_ratio": round(fwd_rate / b["gemm"], 3),
            "fwd_bwd_ratio": round(all_rate / b["gemm"], 3),
            "fwd_bwd_vs_conv_gemm": round(all_rate / b["conv_gemm"], 3),
            "meets_target": None if target is None else bool(all_rate / b["gemm"] >= target),
            "other_load": None if None in b["load"] else min(b["load"]),
            "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT", "default"),
        }))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed runs per case and round (best kept)")
    ap.add_argument("--rounds", type=int, default=3, help="passes through all cases (best kept)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names to run")
    ap.add_argument("--markdown", action="store_true",
                    help="also print a Markdown table at the end")
    ap.add_argument("--blas-spin", action="store_true",
                    help="keep OpenBLAS's default busy-waiting threads (see the top of this file)")
    args = ap.parse_args(argv)
    wanted = [s for s in args.cases.split(",") if s]
    dtype = np.dtype(args.dtype)
    cases = [make_case(*c, batch=args.batch, dtype=dtype) for c in CASES
             if not wanted or any(s in c[0] for s in wanted)]
    rows = measure(cases, dtype, args.repeat, args.rounds)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.markdown:
        print("\n| case | fwd ms | fwd GFLOP/s | fwd+bwd ms | fwd+bwd GFLOP/s | "
              "square GEMM GFLOP/s | "
              "fwd+bwd / GEMM | target | conv-shaped GEMM GFLOP/s | fwd+bwd / conv-shaped |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['case']} | {r['fwd_ms']} | {r['fwd_gflops']} | {r['fwd_bwd_ms']} | "
                  f"{r['fwd_bwd_gflops']} | {r['gemm_gflops']} | {r['fwd_bwd_ratio']} | "
                  f"{'' if r['target'] is None else '>= %s' % r['target']} | "
                  f"{r['conv_gemm_gflops']} | "
                  f"{r['fwd_bwd_vs_conv_gemm']} |")


if __name__ == "__main__":
    main()
