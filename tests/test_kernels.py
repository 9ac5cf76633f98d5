"""im2col / col2im / max-pool: the NumPy reference and the CUDA kernels, checked without a GPU.

1. The NumPy reference (tinygrad_yolo/ops/im2col.py) against brute-force loop definitions, and
   the adjoint identity <im2col(x), c> == <x, col2im(c)>.
2. Every kernels/*.cu compiles with nvcc for sm_90 (PTX only: no GPU needed).
3. The same .cu sources compiled as host C++ (tests/cuda_host_shim.h), every (block, thread) of a
   grid run in a loop, compared with the reference for float32 and float64. Buffers get NaN guard
   zones: an out-of-bounds read poisons the result, an out-of-bounds write changes a guard, and
   outputs start as NaN so an element no thread writes is caught too.
4. With CuPy and a GPU present, the real launches against the reference.
"""
import ctypes
import importlib
import os
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_yolo import backend
from tinygrad_yolo.ops.geometry import conv_output_size, pair, pool_window, window
from tinygrad_yolo.ops.im2col import col2im, im2col

from reference import col2im_loops, im2col_loops, max_pool_backward_loops, max_pool_loops

ROOT = Path(__file__).resolve().parents[1]
KERNEL_DIR = ROOT / "kernels"
TESTS_DIR = Path(__file__).resolve().parent


def _load_kernels_package():
    """tinygrad_yolo.kernels: installed (setup.py maps it to kernels/), or straight from kernels/."""
    return backend.cuda_kernels()


kernels = _load_kernels_package()

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


# ---------------------------------------------------------------- hypothesis strategies

def _axis(max_dilation=2):
    """(size, kernel, stride, padding, dilation) along one axis with an output of at least 1."""
    return st.tuples(st.integers(1, 9), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2),
                     st.integers(1, max_dilation)).filter(lambda t: conv_output_size(*t) >= 1)


@st.composite
def conv_cases(draw, max_dilation=2):
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    H, kh, sh, ph, dh = draw(_axis(max_dilation))
    W, kw, sw, pw, dw = draw(_axis(max_dilation))
    return dict(shape=(N, C, H, W), kh=kh, kw=kw, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))


def geometry_args(case):
    return case["kh"], case["kw"], case["stride"], case["padding"], case["dilation"]


def window_of(case):
    """The case's geometry.Window (what the kernel launchers take)."""
    return window("test", case["shape"], (case["kh"], case["kw"]), case["stride"], case["padding"], case["dilation"])


# Small odd grids make every grid-stride loop wrap; "real" uses the loader's own launch_config.
launches = st.one_of(st.just("real"), st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 7)))
seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------- 1. the NumPy reference

@given(case=conv_cases(), seed=seeds)
def test_reference_im2col_matches_loops(case, seed):
    x = np.random.default_rng(seed).standard_normal(case["shape"])
    expected = im2col_loops(x, *geometry_args(case))
    np.testing.assert_array_equal(im2col(x, *geometry_args(case)), expected)
    # A reused buffer full of stale values must come back exactly the same (padding re-zeroed).
    stale = np.full(expected.shape, np.nan)
    out = im2col(x, *geometry_args(case), out=stale)
    assert out is stale
    np.testing.assert_array_equal(out, expected)


@given(case=conv_cases(), seed=seeds)
def test_reference_col2im_matches_loops(case, seed):
    N, C, H, W = case["shape"]
    Ho, Wo = window_of(case).out_hw
    col = np.random.default_rng(seed).standard_normal((N, C, case["kh"], case["kw"], Ho, Wo))
    expected = col2im_loops(col, case["shape"], *geometry_args(case))
    np.testing.assert_allclose(col2im(col, case["shape"], *geometry_args(case)), expected, rtol=1e-13, atol=1e-13)
    stale = np.full(case["shape"], np.nan)
    np.testing.assert_allclose(col2im(col, case["shape"], *geometry_args(case), out=stale), expected,
                               rtol=1e-13, atol=1e-13)


@given(case=conv_cases(), seed=seeds)
def test_reference_adjoint(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["shape"])
    col_x = im2col(x, *geometry_args(case))
    c = rng.standard_normal(col_x.shape)
    lhs, rhs = np.vdot(col_x, c), np.vdot(x, col2im(c, x.shape, *geometry_args(case)))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs), np.abs(col_x).sum() * np.abs(c).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_keeps_dtype(dtype):
    x = np.arange(2 * 3 * 5 * 4, dtype=dtype).reshape(2, 3, 5, 4)
    col = im2col(x, 3, 2, stride=(2, 1), padding=1, dilation=(1, 2))
    assert col.dtype == dtype and col.shape == (2, 3, 3, 2, 3, 4)
    assert col2im(col, x.shape, 3, 2, stride=(2, 1), padding=1, dilation=(1, 2)).dtype == dtype


def test_reference_rejects_bad_arguments():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        im2col(np.zeros((2, 4, 4)), 3, 3)
    with pytest.raises(ValueError, match="too small"):
        im2col(x, 5, 5)
    with pytest.raises(ValueError, match="stride"):
        im2col(x, 3, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        im2col(x, 3, 3, padding=-1)
    with pytest.raises(ValueError, match="dilation"):
        im2col(x, 3, 3, dilation=(1, 0))
    with pytest.raises(ValueError, match="pair"):
        im2col(x, 3, 3, stride=(1, 1, 1))
    with pytest.raises(ValueError, match="out="):
        im2col(x, 3, 3, out=np.zeros((1, 2, 3, 3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"col must have shape \(1, 2, 3, 3, 2, 2\)"):
        col2im(np.zeros((1, 2, 3, 3, 2, 3)), x.shape, 3, 3)


# ---------------------------------------------------------------- 2. nvcc compiles every source

@pytest.fixture(scope="module")
def ptx(tmp_path_factory):
    """{source: (returncode, stderr, ptx text)}: all sources compiled once, in parallel."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found on PATH: cannot check that kernels/*.cu compile for sm_90")
    tmp = tmp_path_factory.mktemp("ptx")
    procs = {}
    for source, names in kernels.KERNELS.items():
        # Templates only produce code once instantiated: take each instance's address (as the
        # CuPy loader's name_expressions do) so nvcc emits float and double versions.
        instances = ", ".join(f"(void*)&{n}<{t}>" for n in names for t in ("float", "double"))
        unit = tmp / f"instantiate_{source}"
        unit.write_text(f'#include "{KERNEL_DIR / source}"\nvoid* kInstances[] = {{{instances}}};\n')
        cmd = [nvcc, "-arch=sm_90", "-ptx", "-Werror", "all-warnings", "-o", str(tmp / f"{source}.ptx"), str(unit)]
        procs[source] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for source, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        ptx_file = tmp / f"{source}.ptx"
        results[source] = (proc.returncode, err, ptx_file.read_text() if ptx_file.exists() else "")
    return results


@pytest.mark.parametrize("source", sorted(kernels.KERNELS))
def test_source_compiles_with_nvcc_for_sm90(ptx, source):
    returncode, err, text = ptx[source]
    assert returncode == 0, f"nvcc failed on kernels/{source}:\n{err}"
    entries = [line for line in text.splitlines() if ".entry" in line]
    for name in kernels.KERNELS[source]:
        for code in "fd":  # Itanium mangling of the template argument: f = float, d = double
            assert any(f"{len(name)}{name}I{code}E" in line for line in entries), (name, code, entries)


@pytest.mark.parametrize("source", sorted(kernels.KERNELS))
def test_source_is_self_contained_for_nvrtc(source):
    # CuPy compiles with NVRTC, which has no standard headers: an #include that nvcc resolves
    # here would fail only at run time on the GPU.
    lines = (KERNEL_DIR / source).read_text().splitlines()
    assert not [line for line in lines if line.lstrip().startswith("#") and "include" in line]


# ---------------------------------------------------------------- 3. host-compiled kernels

GUARD = 8  # elements of guard zone on each side of every buffer


def _guarded(values, fill=np.nan):
    """A copy of ``values`` inside a larger buffer whose ends hold ``fill``; returns (buffer, view)."""
    values = np.asarray(values)
    buf = np.full(values.size + 2 * GUARD, fill, dtype=values.dtype)
    view = buf[GUARD:GUARD + values.size].reshape(values.shape)
    view[...] = values
    return buf, view


def _check_guards(buf, fill):
    ends = np.concatenate([buf[:GUARD], buf[-GUARD:]])
    if np.issubdtype(buf.dtype, np.floating) and np.isnan(fill):
        assert np.isnan(ends).all(), "a kernel wrote outside its output buffer"
    else:
        assert (ends == fill).all(), "a kernel wrote outside its output buffer"


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


class HostKernels:
    """ctypes front end to tests/kernel_host_driver.cpp, mirroring the CuPy loader's functions."""

    def __init__(self, lib):
        self.lib = lib
        ints = [ctypes.c_longlong] + [ctypes.c_int] * 10  # NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw
        launch = [ctypes.c_uint] * 3
        for suffix in ("f32", "f64"):
            for name, pointers, extra in (("im2col", 2, 2), ("col2im", 2, 2),
                                          ("max_pool2d_forward", 3, 0), ("max_pool2d_backward", 3, 0)):
                fn = getattr(lib, f"host_{name}_{suffix}")
                fn.argtypes = launch + [ctypes.c_void_p] * pointers + ints + [ctypes.c_int] * extra
                if name == "im2col":  # C, image_stride, tap_stride: the layout
                    fn.argtypes += [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
                fn.restype = None

    def _fn(self, name, dtype):
        return getattr(self.lib, f"host_{name}_{'f32' if np.dtype(dtype) == np.float32 else 'f64'}")

    @staticmethod
    def _launch(launch, planes, plane_size):
        if launch == "real":
            (gx, gy, _), (bx, _, _) = kernels.launch_config(planes, plane_size)
            return gx, gy, bx
        return launch

    @staticmethod
    def _ints(x_shape, out_hw, kh, kw, stride, padding):
        N, C, H, W = x_shape
        return [N * C, H, W, *out_hw, kh, kw, *pair(stride), *pair(padding)]

    def im2col(self, x, kh, kw, stride, padding, dilation, launch, layout="images"):
        """col (N, C, kh, kw, Ho, Wo); with layout="columns" written as (C, kh, kw, N, Ho, Wo) by
        kernels.im2col_layout's strides and returned transposed back, to compare."""
        _, _, _, _, _, _, _, _, dh, dw, Ho, Wo = window("test", x.shape, (kh, kw), stride, padding, dilation)
        N, C = x.shape[:2]
        xbuf, xv = _guarded(x)
        shape = (N, C, kh, kw, Ho, Wo) if layout == "images" else (C, kh, kw, N, Ho, Wo)
        cbuf, col = _guarded(np.full(shape, np.nan, dtype=x.dtype))
        strides = kernels.im2col_layout(layout, N, C, kh, kw, Ho * Wo)
        self._fn("im2col", x.dtype)(*self._launch(launch, N * C, Ho * Wo), _ptr(xv), _ptr(col),
                                    *self._ints(x.shape, (Ho, Wo), kh, kw, stride, padding), dh, dw,
                                    C, *strides)
        _check_guards(cbuf, np.nan)
        return col.copy() if layout == "images" else col.transpose(3, 0, 1, 2, 4, 5).copy()

    def col2im(self, col, x_shape, kh, kw, stride, padding, dilation, launch):
        _, _, _, _, _, _, _, _, dh, dw, Ho, Wo = window("test", x_shape, (kh, kw), stride, padding, dilation)
        cbuf, cv = _guarded(col)
        xbuf, x = _guarded(np.full(x_shape, np.nan, dtype=col.dtype))
        N, C, H, W = x_shape
        self._fn("col2im", col.dtype)(*self._launch(launch, N * C, H * W), _ptr(cv), _ptr(x),
                                      *self._ints(x_shape, (Ho, Wo), kh, kw, stride, padding), dh, dw)
        _check_guards(xbuf, np.nan)
        return x.copy()

    def max_pool_forward(self, x, kernel, stride, padding, launch):
        (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
        N, C, H, W = x.shape
        Ho, Wo = conv_output_size(H, kh, sh, ph, 1), conv_output_size(W, kw, sw, pw, 1)
        xbuf, xv = _guarded(x)
        ybuf, y = _guarded(np.full((N, C, Ho, Wo), np.nan, dtype=x.dtype))
        abuf, argmax = _guarded(np.full((N, C, Ho, Wo), -7, dtype=np.int32), fill=-7)
        self._fn("max_pool2d_forward", x.dtype)(*self._launch(launch, N * C, Ho * Wo), _ptr(xv), _ptr(y),
                                                _ptr(argmax), *self._ints(x.shape, (Ho, Wo), kh, kw, stride, padding))
        _check_guards(ybuf, np.nan)
        _check_guards(abuf, -7)
        return y.copy(), argmax.copy()

    def max_pool_backward(self, gy, argmax, x_shape, kernel, stride, padding, launch):
        (kh, kw) = pair(kernel)
        N, C, H, W = x_shape
        gbuf, gyv = _guarded(gy)
        abuf, av = _guarded(argmax.astype(np.int32), fill=-1)
        xbuf, gx = _guarded(np.full(x_shape, np.nan, dtype=gy.dtype))
        self._fn("max_pool2d_backward", gy.dtype)(*self._launch(launch, N * C, H * W), _ptr(gyv), _ptr(av),
                                                  _ptr(gx), *self._ints(x_shape, gy.shape[2:], kh, kw, stride, padding))
        _check_guards(xbuf, np.nan)
        return gx.copy()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found on PATH: cannot compile kernels/*.cu as host C++ to test their indexing")
    lib = tmp_path_factory.mktemp("host_kernels") / "libkernels_host.so"
    # UBSan aborts on undefined behaviour in the index math (signed overflow, bad shifts).
    cmd = [gxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
           "-fno-sanitize-recover=undefined", "-shared", "-fPIC", f"-I{TESTS_DIR}", f"-I{KERNEL_DIR}",
           "-o", str(lib), str(TESTS_DIR / "kernel_host_driver.cpp")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"g++ failed on the host shim:\n{result.stderr}"
    return HostKernels(ctypes.CDLL(str(lib)))


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=conv_cases(), launch=launches, seed=seeds)
def test_host_im2col_matches_reference(host, dtype, case, launch, seed):
    x = np.random.default_rng(seed).standard_normal(case["shape"]).astype(dtype)
    np.testing.assert_array_equal(host.im2col(x, *geometry_args(case), launch), im2col(x, *geometry_args(case)))


@given(case=conv_cases(), launch=launches, seed=seeds)
def test_host_im2col_in_the_columns_layout_matches_reference(host, case, launch, seed):
    # (C, kh, kw, N, Ho, Wo): the images side by side along the columns, for dW as one GEMM
    x = np.random.default_rng(seed).standard_normal(case["shape"]).astype(np.float32)
    got = host.im2col(x, *geometry_args(case), launch, layout="columns")
    np.testing.assert_array_equal(got, im2col(x, *geometry_args(case)))


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=conv_cases(), launch=launches, seed=seeds)
def test_host_col2im_matches_reference(host, dtype, case, launch, seed):
    N, C, H, W = case["shape"]
    Ho, Wo = window_of(case).out_hw
    col = np.random.default_rng(seed).standard_normal((N, C, case["kh"], case["kw"], Ho, Wo)).astype(dtype)
    np.testing.assert_allclose(host.col2im(col, case["shape"], *geometry_args(case), launch),
                               col2im(col, case["shape"], *geometry_args(case)), **TOL[dtype])


@given(case=conv_cases(), launch=launches, seed=seeds)
def test_host_kernels_adjoint(host, case, launch, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["shape"])
    col_x = host.im2col(x, *geometry_args(case), launch)
    c = rng.standard_normal(col_x.shape)
    lhs, rhs = np.vdot(col_x, c), np.vdot(x, host.col2im(c, x.shape, *geometry_args(case), launch))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs), np.abs(col_x).sum() * np.abs(c).max())


@st.composite
def pool_cases(draw, padding_at_most_half_kernel=False):
    """Kernel 1-3, stride 1-3, padding 0-2: by default beyond PyTorch's k/2 too, so some windows
    lie wholly in the padding (the kernel handles them; the GPU wrapper forbids them)."""
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    H, kh, sh, ph, _ = draw(_axis(max_dilation=1))
    W, kw, sw, pw, _ = draw(_axis(max_dilation=1))
    if padding_at_most_half_kernel:  # smaller padding keeps the output >= 1 for kernels <= 3
        ph, pw = min(ph, kh // 2), min(pw, kw // 2)
    return dict(shape=(N, C, H, W), kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw))


def _tie_free(shape, seed, dtype):
    """Distinct integers (exact in float32), shuffled: no two pixels tie."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) - n // 2).reshape(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(case=pool_cases(), launch=launches, seed=seeds)
def test_host_max_pool_matches_loops(host, dtype, case, launch, seed):
    x = _tie_free(case["shape"], seed, dtype)
    args = case["kernel"], case["stride"], case["padding"]
    y, argmax = host.max_pool_forward(x, *args, launch)
    y_ref, argmax_ref = max_pool_loops(x, *args)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    gy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(host.max_pool_backward(gy, argmax, x.shape, *args, launch),
                               max_pool_backward_loops(gy, argmax_ref, x.shape), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_host_max_pool_ties_nan_and_empty_windows(host, dtype):
    launch = (2, 1, 3)
    # All equal: every window picks its first (top-left) pixel; backward routes gy there only.
    x = np.ones((1, 1, 3, 3), dtype=dtype)
    y, argmax = host.max_pool_forward(x, 2, 1, 0, launch)
    np.testing.assert_array_equal(argmax[0, 0], [[0, 1], [3, 4]])
    gy = np.array([[[[1.0, 2.0], [4.0, 8.0]]]], dtype=dtype)
    np.testing.assert_array_equal(host.max_pool_backward(gy, argmax, x.shape, 2, 1, 0, launch)[0, 0],
                                  [[1, 2, 0], [4, 8, 0], [0, 0, 0]])
    # Padding never wins, even against -inf pixels; the first real pixel of the window does.
    x = np.full((1, 1, 3, 3), -np.inf, dtype=dtype)
    y, argmax = host.max_pool_forward(x, 3, 2, 1, launch)
    assert np.isneginf(y).all()
    np.testing.assert_array_equal(argmax[0, 0], [[0, 1], [3, 4]])
    # A later, larger maximum replaces an earlier one; a tie does not.
    x = np.array([[[[1, 5, 5], [2, 5, 9]]]], dtype=dtype)
    y, argmax = host.max_pool_forward(x, (2, 2), 1, 0, launch)
    np.testing.assert_array_equal(y[0, 0], [[5, 9]])
    np.testing.assert_array_equal(argmax[0, 0], [[1, 5]])
    # NaN wins and the first NaN stays (np.max / np.argmax behaviour).
    x = np.array([[[[1, np.nan], [np.nan, 2]]]], dtype=dtype)
    y, argmax = host.max_pool_forward(x, 2, 2, 0, launch)
    assert np.isnan(y).all() and argmax[0, 0, 0, 0] == 1
    # A window wholly in the padding: -inf and argmax -1, and backward ignores it.
    x = np.array([[[[3.0]]]], dtype=dtype)
    y, argmax = host.max_pool_forward(x, 1, 1, 1, launch)
    np.testing.assert_array_equal(argmax[0, 0], [[-1, -1, -1], [-1, 0, -1], [-1, -1, -1]])
    assert y[0, 0, 1, 1] == 3 and np.isneginf(np.delete(y.ravel(), 4)).all()
    gx = host.max_pool_backward(np.arange(9, dtype=dtype).reshape(1, 1, 3, 3), argmax, x.shape, 1, 1, 1, launch)
    np.testing.assert_array_equal(gx, [[[[4.0]]]])


# ---------------------------------------------------------------- the loader without a GPU

@given(planes=st.integers(0, 10**7), plane_size=st.integers(0, 10**8))
def test_launch_config_within_cuda_limits(planes, plane_size):
    (gx, gy, gz), (bx, by, bz) = kernels.launch_config(planes, plane_size)
    assert bx % 32 == 0 and 32 <= bx <= 1024 and by == bz == gz == 1
    assert 1 <= gx <= 2**31 - 1 and 1 <= gy <= 65535
    assert gx * bx >= min(plane_size, kernels.MAX_GRID_X * kernels.MAX_BLOCK)  # no needless wrap


def test_loader_without_cupy_raises_clearly():
    if backend.cuda_available():
        pytest.skip("CuPy and a GPU are present: the no-GPU error path cannot be exercised")
    with pytest.raises(RuntimeError, match="CuPy"):
        kernels.im2col_gpu(np.zeros((1, 1, 3, 3), dtype=np.float32), window("test", (1, 1, 3, 3), 3, 1, 0))


# ---------------------------------------------------------------- 4. on a GPU, when there is one

requires_gpu = pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and an NVIDIA GPU")


@requires_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=conv_cases(), seed=seeds)
def test_gpu_im2col_col2im_match_reference(dtype, case, seed):
    cp = backend.cupy_module()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["shape"]).astype(dtype)
    col = kernels.im2col_gpu(cp.asarray(x), window_of(case))
    np.testing.assert_array_equal(col.get(), im2col(x, *geometry_args(case)))
    np.testing.assert_array_equal(im2col(cp.asarray(x), *geometry_args(case)).get(), col.get())  # xp path
    c = rng.standard_normal(col.shape).astype(dtype)
    np.testing.assert_allclose(kernels.col2im_gpu(cp.asarray(c), x.shape, window_of(case)).get(),
                               col2im(c, x.shape, *geometry_args(case)), **TOL[dtype])


@requires_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@given(case=pool_cases(padding_at_most_half_kernel=True), seed=seeds)
def test_gpu_max_pool_matches_loops(dtype, case, seed):
    cp = backend.cupy_module()
    args = case["kernel"], case["stride"], case["padding"]
    x = _tie_free(case["shape"], seed, dtype)
    g = pool_window("test", x.shape, *args)
    y, argmax = kernels.max_pool2d_forward_gpu(cp.asarray(x), g)
    y_ref, argmax_ref = max_pool_loops(x, *args)
    np.testing.assert_array_equal(y.get(), y_ref)
    np.testing.assert_array_equal(argmax.get(), argmax_ref)
    gy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    gx = kernels.max_pool2d_backward_gpu(cp.asarray(gy), argmax, x.shape, g)
    np.testing.assert_allclose(gx.get(), max_pool_backward_loops(gy, argmax_ref, x.shape), **TOL[dtype])



@requires_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 70)), seed=seeds)
def test_gpu_batch_norm_helpers_match_numpy(dtype, shape, seed):
    """The fused batch-norm kernels against the NumPy expressions they replace."""
    cp = backend.cupy_module()
    rng = np.random.default_rng(seed)
    g, xc = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    a, b, c = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(3))
    np.testing.assert_allclose(kernels.channel_dot_gpu(cp.asarray(g), cp.asarray(xc)).get(),
                               np.einsum("ncl,ncl->c", g, xc), **TOL[dtype])
    np.testing.assert_allclose(kernels.scale_shift_gpu(cp.asarray(g), cp.asarray(a), cp.asarray(b)).get(),
                               g * a[:, None] + b[:, None], **TOL[dtype])
    dx = kernels.batch_norm_dx_gpu(cp.asarray(g), cp.asarray(xc), *(cp.asarray(v) for v in (a, b, c)))
    np.testing.assert_allclose(dx.get(), g * a[:, None] - (xc * b[:, None] + c[:, None]), **TOL[dtype])


def test_batch_norm_helpers_reject_bad_arguments():
    """Checked before CuPy is needed, so these run on any machine."""
    with pytest.raises(TypeError, match="CuPy array"):
        kernels.channel_dot_gpu(np.zeros((1, 2, 3), np.float32), np.zeros((1, 2, 3), np.float32))
    if backend.cuda_available():
        cp = backend.cupy_module()
        with pytest.raises(ValueError, match=r"3-D \(N, C, L\)"):
            kernels.channel_dot_gpu(cp.zeros((2, 3)), cp.zeros((2, 3)))
        with pytest.raises(ValueError, match="shapes differ"):
            kernels.channel_dot_gpu(cp.zeros((1, 2, 3)), cp.zeros((1, 2, 4)))
        with pytest.raises(ValueError, match=r"scale must have shape \(2,\)"):
            kernels.scale_shift_gpu(cp.zeros((1, 2, 3)), cp.zeros(3), cp.zeros(2))


def test_kernels_load_from_a_source_checkout(monkeypatch):
    """Through PYTHONPATH (no install) there is no tinygrad_yolo.kernels package: the loader is
    read from kernels/ beside the package, and sees the .cu sources there."""
    real_import = importlib.import_module

    def not_installed(name, *args):
        if name == "tinygrad_yolo.kernels":
            raise ModuleNotFoundError("no installed kernels", name=name)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", not_installed)
    monkeypatch.delitem(sys.modules, "tinygrad_yolo.kernels", raising=False)
    module = backend.cuda_kernels()
    assert Path(module.__file__).resolve() == (KERNEL_DIR / "__init__.py").resolve()
    assert os.path.isfile(module.source_path("im2col.cu"))
