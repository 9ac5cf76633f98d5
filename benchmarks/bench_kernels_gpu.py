"""GPU bandwidth of the im2col / col2im CUDA kernels at ResNet-18 layer shapes.

For each case prints one JSON line: the kernel's median time (CUDA events, after warm-up), the
bandwidth it achieves counting the bytes it must read and write (input once + output once), and
the bandwidth of a plain device-to-device copy of the same number of bytes, measured in the same
run, as the ceiling. The CuPy slicing path of the NumPy reference (ops/im2col.py on cupy arrays,
one strided copy per kernel tap) is timed too, and the kernel's result is checked against it.

    python benchmarks/bench_kernels_gpu.py [--batch 32] [--dtype float32] [--repeats 20]
"""
import argparse
import json
import os
import sys

import numpy as np

# a checkout without install
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinygrad_yolo import backend
from tinygrad_yolo.ops.geometry import window
from tinygrad_yolo.ops.im2col import col2im, im2col

# name, (C, H, W), kernel, stride, padding: the stem and one 3x3 conv of each ResNet-18 stage.
CASES = [
    ("conv1_7x7_s2", (3, 224, 224), 7, 2, 3),
    ("layer1_3x3", (64, 56, 56), 3, 1, 1),
    ("layer2_3x3", (128, 28, 28), 3, 1, 1),
    ("layer3_3x3", (256, 14, 14), 3, 1, 1),
    ("layer4_3x3", (512, 7, 7), 3, 1, 1),
]


def median_ms(cp, fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end))
    return float(np.median(times))


def copy_gbps(cp, nbytes, warmup, repeats):
    """Bandwidth of a device-to-device copy moving nbytes in total (nbytes/2 read + nbytes/2
    written)."""
    src = cp.ones(nbytes // 2, dtype=cp.uint8)
    dst = cp.empty_like(src)
    ms = median_ms(cp, lambda: dst.data.copy_from_device(src.data, src.nbytes), warmup, repeats)
    return nbytes / ms / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    try:
        cp = backend.cupy_module()
    except RuntimeError as e:
        sys.exit(f"bench_kernels_gpu.py: {e}")
    device = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    device = device.decode() if isinstance(device, bytes) else device
    rng = np.random.default_rng(0)
    kernels = backend.cuda_kernels()  # installed, or kernels/ of this checkout
    im2col_gpu, col2im_gpu = kernels.im2col_gpu, kernels.col2im_gpu

    for name, (C, H, W), k, s, p in CASES:
        x = cp.asarray(rng.standard_normal((args.batch, C, H, W)).astype(args.dtype))
        geometry, g = (k, k, s, p, 1), window("bench", x.shape, k, s, p)
        col = im2col_gpu(x, g)
        ops = {
            "im2col": (lambda: im2col_gpu(x, g), lambda: im2col(x, *geometry)),
            "col2im": (lambda: col2im_gpu(col, x.shape, g),
                       lambda: col2im(col, x.shape, *geometry)),
        }
        for op, (kernel_fn, xp_fn) in ops.items():
            # Results first: a fast wrong kernel is worth nothing.
            np.testing.assert_allclose(kernel_fn().get(), xp_fn().get(), rtol=1e-5, atol=1e-5)
            nbytes = x.nbytes + col.nbytes  # one read of the input, one write of the output
            ms = median_ms(cp, kernel_fn, args.warmup, args.repeats)
            ceiling = copy_gbps(cp, nbytes, args.warmup, args.repeats)
            print(json.dumps({
                "case": name, "op": op, "dtype": args.dtype, "batch": args.batch,
                "x_shape": list(x.shape), "col_shape": list(col.shape),
                "mbytes": round(nbytes / 1e6, 1),
                "kernel_ms": round(ms, 4), "kernel_GBps": round(nbytes / ms / 1e6, 1),
                "copy_GBps": round(ceiling, 1),
                "fraction_of_copy": round(nbytes / ms / 1e6 / ceiling, 3),
                "xp_path_ms": round(median_ms(cp, xp_fn, args.warmup, args.repeats), 4),
                "device": device,
            }), flush=True)


if __name__ == "__main__":
    main()
