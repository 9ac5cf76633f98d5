"""First contact with a GPU: does the CUDA path load, compile and compute what the CPU computes?

    PYTHONPATH=. python benchmarks/gpu_first_contact.py              # on the GPU machine
    python benchmarks/gpu_first_contact.py --dry-run                 # here, through fake_cupy

Four parts, each printing PASS/FAIL lines, run whatever the one before gave; the exit status is
the number of failed parts (part 1 failing ends the run: nothing else can work):
 1. versions (Python, NumPy, CuPy, CUDA runtime and driver, the GPU) and the up-front probe of
    --device cuda: cuBLAS loads, NVRTC compiles a kernel (backend.probe_cuda_libraries);
 2. every kernel instance compiled and fetched: kernels/*.cu for float and double, and the
    ElementwiseKernel / ReductionKernel templates (each launched once on a tiny array);
 3. cuBLAS GEMM layouts (kernels/gemm.py: transposes, row slices, broadcast batches, beta = 1,
    TF32) against NumPy in float64 / float32;
 4. one YOLO-ResNet18 training step (128², batch 2, SGD with momentum and weight decay) in
    float64 on the GPU against the CPU: the loss, every gradient, the weights after the fused
    optimizer step and the running statistics.
"""
import argparse
import contextlib
import itertools
import os
import platform
import sys
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinygrad_yolo import backend  # noqa: E402


def versions_and_probe():
    cp = backend.probe_cuda_libraries()  # raises the one-line error naming the missing library
    print("python", platform.python_version(), "numpy", np.__version__, "cupy",
          getattr(cp, "__version__", "stand-in"))
    rt = cp.cuda.runtime
    for what, ask in (("CUDA runtime", "runtimeGetVersion"), ("driver", "driverGetVersion")):
        if hasattr(rt, ask):
            print(what, getattr(rt, ask)())
    if hasattr(rt, "getDeviceProperties"):
        props = rt.getDeviceProperties(0)
        print("GPU", props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
              f"{props['totalGlobalMem'] / 2 ** 30:.1f} GiB")
    print("PASS cuBLAS handle and an NVRTC compile")
    return 0


def kernels_compiled():
    cp = backend.cupy_module()
    kernels, fused = backend.cuda_kernels(), backend.cuda_kernels("fused")
    count = 0
    for source, names in kernels.KERNELS.items():
        for ctype in ("float", "double"):
            module = kernels._module(cp, source, ctype)
            for name in names:
                module.get_function(f"{name}<{ctype}>")
                count += 1
    for source, names in fused.SOURCES.items():
        module = fused._module(cp, source)
        for name, ctype in itertools.product(names, ("float", "double")):
            module.get_function(f"{name}<{ctype}>")
            count += 1
    for dtype in (np.float32, np.float64):  # the templates compile on their first launch
        u = cp.ones((2, 3, 4), dtype=dtype)
        kernels.channel_dot_gpu(u, u), kernels.scale_shift_gpu(u, cp.ones(3), cp.zeros(3))
        kernels.batch_norm_dx_gpu(u, u, cp.ones(3), cp.ones(3), cp.zeros(3))
        count += 3
    print(f"PASS {count} kernel instances compiled and fetched")
    return 0


def _operand(rng, shape, layout, dtype, cp):
    """A device operand of ``shape`` (the meaning) stored as ``layout``: contiguous, a
    transposed view of a contiguous array, or rows of a wider array (ld > columns)."""
    a = rng.standard_normal(shape).astype(dtype)
    if layout == "transposed":
        d = cp.asarray(np.ascontiguousarray(np.swapaxes(a, -1, -2)))
        return a, cp.swapaxes(d, -1, -2)
    if layout == "row-slice":
        wide = np.zeros(shape[:-1] + (shape[-1] + 3,), dtype)
        wide[..., :shape[-1]] = a
        return a, cp.asarray(wide)[..., :shape[-1]]
    return a, cp.asarray(a)


def gemm_layouts():
    cp, gemm = backend.cupy_module(), backend.cuda_kernels("gemm")
    rng = np.random.default_rng(0)
    failures, cases = [], 0
    layouts = ("contiguous", "transposed", "row-slice")
    for dtype, la, lb, ta, tb, form in itertools.product(
            (np.float64, np.float32), layouts, layouts, (False, True), (False, True),
            ("2d@3d", "3d@3d", "3d@2d")):
        M, K, N, B = 5, 7, 6, 3
        sa = (K, M) if ta else (M, K)
        sb = (N, K) if tb else (K, N)
        sa, sb = ((B,) + sa if form != "2d@3d" else sa), ((B,) + sb if form != "3d@2d" else sb)
        a, da = _operand(rng, sa, la, dtype, cp)
        b, db = _operand(rng, sb, lb, dtype, cp)
        want = np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
        got = backend.to_numpy(gemm.batched_matmul(da, db, trans_a=ta, trans_b=tb))
        cases += 1
        tol = 1e-12 if dtype == np.float64 else 1e-5
        if not np.allclose(got, want.reshape(got.shape), rtol=tol, atol=tol):
            failures.append((np.dtype(dtype).name, la, lb, ta, tb, form))
    out = cp.asarray(np.ones((1, 4, 4)))  # beta = 1: out += a @ b
    a = rng.standard_normal((4, 3))
    gemm.batched_matmul(cp.asarray(a), cp.asarray(a.T.copy()), out=out, accumulate=True)
    cases += 1
    if not np.allclose(backend.to_numpy(out)[0], 1 + a @ a.T, rtol=1e-12, atol=1e-12):
        failures.append(("accumulate",))
    failures += _tf32_case(cp, gemm, rng)
    print(f"{'FAIL' if failures else 'PASS'} {cases + 1 - len(failures)}/{cases + 1} GEMM layouts "
          "agree with NumPy" + (f": failed {failures}" if failures else ""))
    return int(bool(failures))


def _tf32_case(cp, gemm, rng):
    a = rng.standard_normal((64, 256)).astype(np.float32)
    b = rng.standard_normal((256, 64)).astype(np.float32)
    gemm.set_tf32(True)
    try:
        got = backend.to_numpy(gemm.batched_matmul(cp.asarray(a), cp.asarray(b)))[0]
    finally:
        gemm.set_tf32(False)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    err = np.abs(got - exact).max() / (np.abs(a) @ np.abs(b)).max()
    print(f"     TF32 GEMM: max error {err:.2e} of Σ|a||b| (TF32 rounds to 2^-11, float32 2^-24)")
    return [] if err < 2.0 ** -9 else [("tf32", float(err))]


def yolo_step_against_the_cpu():
    import tinygrad_yolo as tg
    from tinygrad_yolo import optim
    from tinygrad_yolo.bench import random_targets
    from tinygrad_yolo.detection import YOLOv1Loss
    from tinygrad_yolo.models import YOLOv1
    from tinygrad_yolo.utils import seed

    rng = np.random.default_rng(0)
    x, t = rng.random((2, 3, 128, 128)), random_targets(rng, 2, 2, 20).astype(np.float64)
    results = {}
    for device in ("cpu", "cuda"):
        seed(0)
        model = YOLOv1("resnet18", S=2, B=2, C=20, img_size=128, head="conv").double().to(device)
        opt = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
        loss, _ = YOLOv1Loss(S=2, B=2, C=20)(model(tg.Tensor(x, device=device)),
                                             tg.Tensor(t, device=device))
        opt.zero_grad()
        loss.backward()
        grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
        opt.step()
        state = {n: backend.to_numpy(v) for n, v in model.state_dict().items()}
        results[device] = (loss.item(), grads, state)
    (loss_c, grads_c, state_c), (loss_g, grads_g, state_g) = results["cpu"], results["cuda"]
    worst = {"loss": abs(loss_g - loss_c) / abs(loss_c)}
    worst["gradients"] = max(_rel(grads_g[n], g) for n, g in grads_c.items())
    worst["weights and running statistics after the step"] = max(
        _rel(state_g[n], v) for n, v in state_c.items())
    failed = [k for k, v in worst.items() if not v <= 1e-9]
    for k, v in worst.items():
        print(f"{'FAIL' if k in failed else 'PASS'} float64 step, {k}: max relative error {v:.1e}")
    return int(bool(failed))


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)) if b.size else 0.0


PARTS = [("1 versions, cuBLAS and NVRTC", versions_and_probe),
         ("2 kernels compiled", kernels_compiled),
         ("3 GEMM layouts against NumPy", gemm_layouts),
         ("4 YOLO-ResNet18 float64 step against the CPU", yolo_step_against_the_cpu)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="run through tinygrad_yolo/testing/fake_cupy (no GPU needed)")
    ap.add_argument("--parts", default="1,2,3,4", help="which parts to run (default: all)")
    args = ap.parse_args(argv)
    chosen = [PARTS[int(i) - 1] for i in args.parts.split(",")]
    failed = 0
    with _device(args.dry_run):
        for title, part in chosen:
            print(f"== {title}", flush=True)
            try:
                failed += part()
            except Exception as e:  # one part's failure is a result too: report it, go on
                traceback.print_exc(limit=-4)
                first = (str(e).splitlines() or [""])[0]
                print(f"FAIL {title}: {type(e).__name__}: {first}")
                failed += 1
                if part is versions_and_probe:
                    break
    print(f"== {failed} of {len(chosen)} parts failed")
    return failed


def _device(dry_run):
    if not dry_run:
        return contextlib.nullcontext()
    from tinygrad_yolo.testing import fake_cupy
    return fake_cupy.installed()


if __name__ == "__main__":
    sys.exit(main())
