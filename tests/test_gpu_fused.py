"""Issue 19's CUDA paths on a real GPU (skipped without CuPy and a GPU; on the CPU the same code is
checked through testing/fake_cupy in test_fused_kernels.py and test_gemm_gpu.py): fused batch norm,
fused optimizer steps, cuBLAS strided-batched GEMMs and the chunked convolution against the CPU
reference. Tolerances: float64 1e-9 (the GPU sums in another order and contracts a*b + c into
fused multiply-adds), float32 as test_gpu.py's."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import backend
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.cuda import conv as conv_gpu
from test_fused_kernels import OPTIMIZERS, SHAPES, _data, _flat_state, _optimize, _run

pytestmark = pytest.mark.skipif(not tg.cuda_available(), reason="needs CuPy and a GPU")
TOL = {np.float64: dict(rtol=1e-9, atol=1e-9), np.float32: dict(rtol=2e-4, atol=2e-5)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu,residual", [(False, False), (True, True)])
def test_fused_batch_norm_on_the_gpu(dtype, shape, training, relu, residual):
    x, w, b, r, G = _data(shape, dtype, seed=sum(shape), offset=False)
    C = shape[1]
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    args = (x, w, b, r, G, training, relu, residual, rm, rv)
    ref, got = _run("cpu", *args), _run("cuda", *args)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], err_msg=k, **TOL[dtype])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_optimizer_steps_on_the_gpu(name):
    ref_p, ref_sd = _optimize("cpu", OPTIMIZERS[name], np.float32)
    got_p, got_sd = _optimize("cuda", OPTIMIZERS[name], np.float32)
    for a, b in zip(got_p, ref_p):  # three steps; fused multiply-adds round once instead of twice
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for (k, a), (_, b) in zip(_flat_state(got_sd), _flat_state(ref_sd)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("broadcast", [None, "a", "b"])
def test_cublas_batched_matmul_on_the_gpu(ta, tb, broadcast):
    cp = backend.cupy_module()
    gemm = backend.cuda_kernels("gemm")
    rng = np.random.default_rng(0)
    M, N, K, batch = 37, 29, 53, 3
    a_shape, b_shape = (K, M) if ta else (M, K), (N, K) if tb else (K, N)
    a = rng.standard_normal(a_shape if broadcast == "a" else (batch,) + a_shape)
    b = rng.standard_normal(b_shape if broadcast == "b" else (batch,) + b_shape)
    out = gemm.batched_matmul(cp.asarray(a), cp.asarray(b), trans_a=ta, trans_b=tb).get()
    A = np.swapaxes(a, -1, -2) if ta else a
    B = np.swapaxes(b, -1, -2) if tb else b
    np.testing.assert_allclose(out, np.broadcast_to(A @ B, out.shape), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cap", [None, 1])
@pytest.mark.parametrize("stride,kernel", [(1, 3), (2, 3), (2, 1), (1, 1)])
def test_chunked_convolution_on_the_gpu(monkeypatch, cap, stride, kernel):
    if cap is not None:
        monkeypatch.setattr(conv_gpu, "COLUMN_CAP_BYTES", cap)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4, 11, 10)), rng.standard_normal((5, 4, kernel, kernel))
    g = None
    results = {}
    for device in ("cpu", "cuda"):
        xt = tg.Tensor(x, requires_grad=True, device=device)
        wt = tg.Tensor(w, requires_grad=True, device=device)
        y = F.conv2d(xt, wt, stride=stride, padding=kernel // 2)
        g = rng.standard_normal(y.shape) if g is None else g
        y.backward(tg.Tensor(g, device=device))
        results[device] = (y.numpy(), xt.grad.numpy(), wt.grad.numpy())
    for a, b in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
