"""Fused batch norm and optimizer kernels (kernels/batchnorm.cu, kernels/optim.cu), checked without
a GPU:

1. Both sources compile with nvcc for sm_90 (PTX only) and need no headers (NVRTC has none).
2. The sources compiled as host C++ (tests/cuda_host_shim.h, tests/fused_host_driver.cpp) run
   every thread of kernels/fused.py's own launches, through the CUDA code path of the engine
   (cuda/norm.py, cuda/optim.py) with testing/fake_cupy standing in for CuPy; device arrays
   from cp.empty start as NaN, so an element no thread writes shows. Compared with the CPU
   reference (ops/norm.py composed with the add and ReLU; optim/sgd.py and adam.py) in float64
   to 1e-10 and float32 to what float32 rounding allows, and by a numeric directional derivative.
3. fake_cupy's NumPy emulations of these kernels (which the launch counter runs) agree with the
   host-compiled kernels.
"""
import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import backend, optim
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.cuda.norm import FusedBatchNorm
from tinygrad_yolo.testing import fake_cupy, kernel_emulations

ROOT = Path(__file__).resolve().parents[1]
KERNEL_DIR = ROOT / "kernels"
TESTS_DIR = Path(__file__).resolve().parent
fused = backend.cuda_kernels("fused")


# ---------------------------------------------------------------- 1. nvcc

@pytest.mark.parametrize("source", sorted(fused.SOURCES))
def test_source_compiles_with_nvcc_for_sm90(tmp_path, source):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH")
    names = fused.SOURCES[source]
    instances = ", ".join(f"(void*)&{n}<{t}>" for n in names for t in ("float", "double"))
    unit = tmp_path / f"instantiate_{source}"
    unit.write_text(f'#include "{KERNEL_DIR / source}"\nvoid* kInstances[] = {{{instances}}};\n')
    out = tmp_path / "out.ptx"
    cmd = [nvcc, "-arch=sm_90", "-ptx", "-Werror", "all-warnings", "-o", str(out), str(unit)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    entries = [line for line in out.read_text().splitlines() if ".entry" in line]
    for name in names:
        for code in "fd":
            assert any(f"{len(name)}{name}I{code}E" in line for line in entries), (name, code)


@pytest.mark.parametrize("source", sorted(fused.SOURCES))
def test_source_is_self_contained_for_nvrtc(source):
    lines = (KERNEL_DIR / source).read_text().splitlines()
    assert not [line for line in lines if line.lstrip().startswith("#") and "include" in line]


def test_launch_geometry_within_cuda_limits():
    for m in (1, 2, 31, 64, 65, 2047, 2049, 10 ** 5, 10 ** 9):
        P = fused.shares(m)
        assert 1 <= P <= fused.MAX_SHARES and (P <= 32 or P % 32 == 0)
        assert P <= max(1, -(-m // fused.MIN_SHARE)) + 31
        for C in (1, 3, 64, 70000):
            grid, block = fused.shares_launch(C, P)
            assert grid[0] * block[0] >= P and block[0] <= 1024 and grid[1] <= 65535
            assert block[0] % 32 == 0
    for C in (1, 100, 5000):
        grid, block = fused.channels_launch(C)
        assert grid[0] * block[0] >= C
    assert fused.elementwise_launch(0)[0][0] == 1


# ---------------------------------------------------------------- 2. the host-compiled kernels

@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found on PATH: cannot compile kernels/*.cu as host C++")
    lib = tmp_path_factory.mktemp("fused_host") / "fused_host.so"
    # No -march: the host build does no fused multiply-add, so it rounds as NumPy does.
    cmd = [gxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Werror", "-I", str(TESTS_DIR),
           "-I", str(KERNEL_DIR), "-o", str(lib), str(TESTS_DIR / "fused_host_driver.cpp")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(lib))


def _ctypes_arg(v):
    if isinstance(v, np.ndarray):
        return ctypes.c_void_p(v.ctypes.data)
    if isinstance(v, np.uint64):  # fused.NULL
        assert v == 0
        return ctypes.c_void_p(None)
    return {np.int32: ctypes.c_int, np.int64: ctypes.c_longlong, np.float32: ctypes.c_float,
            np.float64: ctypes.c_double}[type(v)](v)


def _host_emulation(lib, name):
    def run(grid, block, *args):
        dtype = next(a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f")
        fn = getattr(lib, f"host_{name}_{'f32' if dtype == np.float32 else 'f64'}")
        fn.restype = None
        fn(ctypes.c_uint(grid[0]), ctypes.c_uint(grid[1]), ctypes.c_uint(block[0]),
           *map(_ctypes_arg, args))
    run.with_launch = True
    return run


@pytest.fixture
def cuda(host_lib, monkeypatch):
    """device='cuda' through fake_cupy, the fused kernels running host-compiled; fresh device
    arrays hold NaN."""
    for name in fused.SOURCES["batchnorm.cu"] + fused.SOURCES["optim.cu"]:
        monkeypatch.setitem(kernel_emulations.RAW_KERNELS, name, _host_emulation(host_lib, name))
    with fake_cupy.installed() as cp:
        empty = cp.empty

        def nan_empty(shape, dtype=float, **kwargs):
            a = empty(shape, dtype, **kwargs)
            if np.dtype(dtype).kind == "f":
                fake_cupy.unwrap(a)[...] = np.nan
            return a
        monkeypatch.setattr(fake_cupy, "empty", nan_empty, raising=False)
        monkeypatch.setattr(fake_cupy, "empty_like",
                            lambda a, dtype=None: nan_empty(a.shape, dtype or a.dtype),
                            raising=False)
        yield cp


SHAPES = [(2, 3, 5, 7),       # m = 70: two shares
          (3, 2, 1, 1),       # m = 3: one share, fewer values than threads
          (4, 2, 33, 17),     # m = 2244: 36 shares rounded up to 64, the last ones shorter
          (16, 2, 32, 32),    # m = 16384: 256 shares
          (5, 4)]             # (N, C): L = 1


def _data(shape, dtype, seed, offset=True):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = rng.standard_normal(shape)
    if offset:  # channel means far from 0 (one at 1e3): a naive Σx² - (Σx)²/m would lose digits
        x = x * np.linspace(0.5, 2, C).reshape((1, C) + (1,) * (len(shape) - 2)) \
            + np.array([1e3] + [3.0] * (C - 1)).reshape((1, C) + (1,) * (len(shape) - 2))
    return (x.astype(dtype), rng.standard_normal(C).astype(dtype),
            rng.standard_normal(C).astype(dtype), rng.standard_normal(shape).astype(dtype),
            rng.standard_normal(shape).astype(dtype))


def _tensors(arrays, device, grad=True):
    return [tg.Tensor(a.copy(), requires_grad=grad, device=device) for a in arrays]


def _run(device, x, w, b, r, G, training, relu, residual, rm, rv):
    """Forward and backward of relu(bn(x) + r) on one device; returns host arrays."""
    xt, wt, bt, rt = _tensors([x, w, b, r], device)
    rmd, rvd = backend.to_device(rm.copy(), device), backend.to_device(rv.copy(), device)
    y = F.batch_norm(xt, rmd, rvd, wt, bt, training=training, momentum=0.1, eps=1e-5,
                     residual=rt if residual else None, relu=relu)
    y.backward(tg.Tensor(G, device=device))
    out = {"y": y.numpy(), "dx": xt.grad.numpy(), "dw": wt.grad.numpy(), "db": bt.grad.numpy(),
           "rm": backend.to_numpy(rmd), "rv": backend.to_numpy(rvd)}
    if residual:
        out["dr"] = rt.grad.numpy()
    return out


def _reference(*args):
    return _run("cpu", *args)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu,residual",
                         [(False, False), (True, False), (True, True), (False, True)])
def test_fused_batch_norm_matches_the_reference_in_float64(cuda, shape, training, relu, residual):
    x, w, b, r, G = _data(shape, np.float64, seed=sum(shape) + 7 * training + 3 * relu + residual)
    C = shape[1]
    rm, rv = np.linspace(-1, 1, C), np.linspace(0.5, 2, C)
    if not training:  # the running statistics are the input's, so the output isn't all ReLU-clipped
        rm = x.reshape(shape[0], C, -1).mean(axis=(0, 2))
    args = (x, w, b, r, G, training, relu, residual, rm, rv)
    ref, got = _reference(*args), _run("cuda", *args)
    assert set(ref) == set(got)
    for k in ref:
        assert np.isfinite(got[k]).all(), k  # every element written
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-10, atol=1e-10, err_msg=k)


@pytest.mark.parametrize("shape", [(4, 2, 33, 17), (16, 2, 32, 32)])
def test_fused_batch_norm_float32_is_as_close_to_float64_as_the_reference(cuda, shape):
    """float32: both paths against the float64 result. The fused path may not be worse than the
    CPU reference by more than a small factor (their roundings differ: Welford shares and a
    float64 combination against pairwise sums)."""
    x, w, b, r, G = _data(shape, np.float64, seed=11)
    C = shape[1]
    rm, rv = np.zeros(C), np.ones(C)
    exact = _reference(x, w, b, r, G, True, True, True, rm, rv)
    args32 = [a.astype(np.float32) for a in (x, w, b, r, G)] + [
        True, True, True, rm.astype(np.float32), rv.astype(np.float32)]
    ref, got = _reference(*args32), _run("cuda", *args32)
    for k in exact:
        scale = np.abs(exact[k]).max()
        err_ref = np.abs(ref[k] - exact[k]).max() / scale
        err_got = np.abs(got[k] - exact[k]).max() / scale
        # float32 has 2^-24 = 6e-8: a few hundred ulps of the largest value bounds both here
        assert err_got <= max(4 * err_ref, 2e-6), (k, err_got, err_ref)


def test_fused_batch_norm_gradient_matches_a_numeric_directional_derivative(cuda):
    """d/dt Σ G·f(x + t·d, w + t·dw, b + t·db, r + t·dr) at t = 0, by central differences in
    float64, against the fused backward's <dx, d> + <dw, dw> + ..."""
    shape = (3, 2, 4, 5)
    x, w, b, r, G = _data(shape, np.float64, seed=5, offset=False)
    rng = np.random.default_rng(6)
    dirs = [rng.standard_normal(a.shape) for a in (x, w, b, r)]

    def f(t):
        xt, wt, bt, rt = [tg.Tensor(a + t * d, device="cuda") for a, d in zip((x, w, b, r), dirs)]
        y = F.batch_norm(xt, None, None, wt, bt, training=True, residual=rt, relu=True)
        return float((y.numpy() * G).sum())
    eps = 1e-6
    numeric = (f(eps) - f(-eps)) / (2 * eps)
    xt, wt, bt, rt = _tensors([x, w, b, r], "cuda")
    y = F.batch_norm(xt, None, None, wt, bt, training=True, residual=rt, relu=True)
    y.backward(tg.Tensor(G, device="cuda"))
    analytic = sum(float((t.grad.numpy() * d).sum()) for t, d in zip((xt, wt, bt, rt), dirs))
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_fused_batch_norm_checks_its_arguments(cuda):
    x = tg.Tensor(np.zeros((2, 3, 4, 4)), device="cuda")
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(tg.Tensor(np.zeros((1, 3, 1, 1)), device="cuda"), None, None, training=True)
    with pytest.raises(ValueError, match="residual must have the input's shape"):
        F.batch_norm(x, None, None, training=True,
                     residual=tg.Tensor(np.zeros((2, 3, 4, 5)), device="cuda"))
    with pytest.raises(ValueError, match="running_mean and running_var are needed"):
        F.batch_norm(x, None, None, training=False)
    assert FusedBatchNorm  # the op nn.functional.batch_norm picks for CUDA arrays


# ---- optimizers

def _params(dtype, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in ((7, 3), (5,), (2, 3, 3, 3))]


def _optimize(device, make, dtype, steps=3, seed=0):
    values = _params(dtype, seed)
    params = [tg.nn.Parameter(backend.to_device(v.copy(), device)) for v in values]
    opt = make(params)
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        for p in params:
            p.grad = tg.Tensor(backend.to_device(rng.standard_normal(p.shape).astype(dtype),
                                                 device))
        opt.step()
    return [p.numpy() for p in params], opt.state_dict()


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd_momentum_wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4),
    "sgd_dampening": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3),
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                         weight_decay=1e-2),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.05),
}


def _flat_state(sd):
    out = []
    for s in sd["state"].values() if isinstance(sd["state"], dict) else sd["state"]:
        for k in sorted(s):
            out.append((k, backend.to_numpy(s[k]) if hasattr(s[k], "shape") else s[k]))
    return out


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_optimizer_steps_match_the_reference(cuda, name, dtype):
    ref_p, ref_sd = _optimize("cpu", OPTIMIZERS[name], dtype)
    got_p, got_sd = _optimize("cuda", OPTIMIZERS[name], dtype)
    # The host build rounds each operation as NumPy does (same order, no FMA): equal to the last bit
    # in practice; 2 ulp of slack for a compiler that contracts anyway (nvcc does on the GPU).
    ulps = 2 * np.finfo(dtype).eps
    for a, b in zip(got_p, ref_p):
        np.testing.assert_allclose(a, b, rtol=ulps, atol=ulps)
    ref_state, got_state = _flat_state(ref_sd), _flat_state(got_sd)
    assert [k for k, _ in got_state] == [k for k, _ in ref_state]
    for (k, a), (_, b) in zip(got_state, ref_state):
        np.testing.assert_allclose(a, b, rtol=ulps, atol=ulps, err_msg=k)


# ---------------------------------------------------------------- 3. fake_cupy's emulations

@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 2, 33, 17)])
def test_launch_counter_emulations_match_the_host_compiled_kernels(host_lib, monkeypatch, shape):
    x, w, b, r, G = _data(shape, np.float64, seed=3)
    C = shape[1]
    args = (x, w, b, r, G, True, True, True, np.zeros(C), np.ones(C))
    with fake_cupy.installed():
        emulated = _run("cuda", *args)
    for name in fused.SOURCES["batchnorm.cu"]:
        monkeypatch.setitem(kernel_emulations.RAW_KERNELS, name, _host_emulation(host_lib, name))
    with fake_cupy.installed():
        compiled = _run("cuda", *args)
    for k in compiled:
        np.testing.assert_allclose(emulated[k], compiled[k], rtol=1e-11, atol=1e-11, err_msg=k)
