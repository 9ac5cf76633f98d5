"""kernels/gemm.py (cuBLAS strided-batched GEMMs) and cuda/conv.py (the CUDA convolution built on
them, column matrices in chunks), checked without a GPU: the cuBLAS calls run through
testing/fake_cublas, which carries out cuBLAS's column-major semantics (transpose flags, leading
dimensions, batch strides, host alpha/beta) on the memory behind the pointers, refuses leading
dimensions cuBLAS refuses and reads only inside live allocations."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo import backend
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.cuda import conv as conv_gpu
from tinygrad_yolo.testing import fake_cupy

gemm = backend.cuda_kernels("gemm")


def _stored(cp, rng, rows, cols, batch, layout, dtype):
    """A device operand of logical shape ([batch,] rows, cols) stored as ``layout``: "c" contiguous,
    "t" a transposed view of a contiguous array, "pad" rows of a wider array (ld > cols), "tpad"
    a transposed view of such; batch None for a 2-D operand."""
    lead = () if batch is None else (batch,)
    if layout == "c":
        a = rng.standard_normal(lead + (rows, cols))
        return cp.asarray(a.astype(dtype))
    if layout == "t":
        a = cp.asarray(rng.standard_normal(lead + (cols, rows)).astype(dtype))
        return a.swapaxes(-1, -2)
    if layout == "pad":
        a = cp.asarray(rng.standard_normal(lead + (rows, cols + 3)).astype(dtype))
        return a[..., :cols]
    a = cp.asarray(rng.standard_normal(lead + (cols, rows + 2)).astype(dtype))
    return a[..., :rows].swapaxes(-1, -2)


layouts = st.sampled_from(["c", "t", "pad", "tpad"])


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 5), N=st.integers(1, 5), K=st.integers(0, 4), batch=st.integers(0, 3),
       a_batched=st.booleans(), b_batched=st.booleans(), la=layouts, lb=layouts, ta=st.booleans(),
       tb=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 16))
def test_batched_matmul_matches_numpy_for_every_layout(M, N, K, batch, a_batched, b_batched, la, lb,
                                                       ta, tb, dtype, seed):
    if not (a_batched or b_batched):
        batch = 1
    rng = np.random.default_rng(seed)
    with fake_cupy.installed() as cp:
        a = _stored(cp, rng, *((K, M) if ta else (M, K)), batch if a_batched else None, la, dtype)
        b = _stored(cp, rng, *((N, K) if tb else (K, N)), batch if b_batched else None, lb, dtype)
        fake_cupy.counter.reset()
        out = gemm.batched_matmul(a, b, trans_a=ta, trans_b=tb)
        counts = dict(fake_cupy.counter.calls)
        A = a.get().swapaxes(-1, -2) if ta else a.get()
        B = b.get().swapaxes(-1, -2) if tb else b.get()
        expected = np.matmul(A.astype(np.float64), B.astype(np.float64))
        if expected.ndim == 2:
            expected = expected[None]
        assert out.shape == expected.shape and out.flags.c_contiguous and out.dtype == dtype
        np.testing.assert_allclose(out.get(), expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5)
        # every one of these layouts goes to cuBLAS as it lies: no copy, no pointer arrays
        assert counts.get("copy", 0) == 0, counts
        assert counts.get("elementwise", 0) <= (1 if K == 0 else 0), counts
        assert counts.get("gemm", 0) == (1 if out.size and K else 0), counts


def test_gemm_arguments_for_the_convolution_products():
    """The three products of a conv step, as cuBLAS calls: one call each, the weight matrix
    broadcast (stride 0), the column matrix transposed by a flag."""
    N, K, Q, P, f = 4, 8, 27, 100, 4
    # forward: w2 (K, Q) @ col (N, Q, P)
    args, A, B = gemm.gemm_arguments((K, Q), (Q * f, f), (N, Q, P), (Q * P * f, P * f, f), f)
    assert args == gemm.GemmArgs(transa=0, transb=0, m=P, n=K, k=Q, lda=P, strideA=Q * P, ldb=Q,
                                 strideB=0, ldc=P, strideC=K * P, batch=N)
    assert not A.copied and not B.copied
    # dW: g3 (N, K, P) @ col (N, Q, P)ᵀ
    args, A, B = gemm.gemm_arguments((N, K, P), (K * P * f, P * f, f), (N, Q, P),
                                     (Q * P * f, P * f, f), f, trans_b=True)
    got = (args.transa, args.transb, args.m, args.n, args.k, args.lda, args.ldb)
    assert got == (1, 0, Q, K, P, P, P)
    assert not A.copied and not B.copied
    # dx through col2im: w2ᵀ (Q, K) @ g3 (N, K, P)
    args, A, B = gemm.gemm_arguments((K, Q), (Q * f, f), (N, K, P), (K * P * f, P * f, f), f,
                                     trans_a=True)
    got = (args.transa, args.transb, args.m, args.n, args.k, args.ldb, args.strideB)
    assert got == (0, 1, P, Q, K, Q, 0)


def test_gemm_arguments_copy_only_what_cublas_cannot_describe():
    f = 4
    # a view strided in both of its last axes (every second row and column)
    _, A, _ = gemm.gemm_arguments((3, 4), (2 * 8 * f, 2 * f), (4, 2), (2 * f, f), f)
    assert A.copied
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gemm.gemm_arguments((3, 4), (16, 4), (5, 2), (8, 4), f)
    with pytest.raises(ValueError, match="don't broadcast"):
        gemm.gemm_arguments((2, 3, 4), (48, 16, 4), (3, 4, 2), (32, 8, 4), f)


def test_fake_cublas_refuses_what_cublas_refuses():
    from tinygrad_yolo.testing import fake_cublas
    with fake_cupy.installed() as cp:
        a = cp.zeros((4, 4), dtype=np.float32)
        one = np.ones((), np.float32)
        with pytest.raises(fake_cublas.CUBLASError, match="leading dimension"):
            fake_cublas.sgemm(0, 0, 0, 4, 4, 4, one.ctypes.data, a.data.ptr, 3, a.data.ptr, 4,
                              one.ctypes.data, a.data.ptr, 4)
        with pytest.raises(ValueError, match="not inside one device allocation"):
            fake_cublas.sgemmStridedBatched(0, 0, 0, 4, 4, 4, one.ctypes.data, a.data.ptr, 4, 16,
                                            a.data.ptr, 4, 16, one.ctypes.data, a.data.ptr, 4, 16,
                                            2)


@pytest.mark.parametrize("n,per,cap", [(1, 10, 5), (7, 10, 35), (32, 3, 1000), (5, 10, 10),
                                       (0, 1, 1), (9, 4, 16)])
def test_image_chunks_cover_the_batch_within_the_cap(n, per, cap):
    chunks = gemm.image_chunks(n, per, cap)
    assert [i for a, b in chunks for i in range(a, b)] == list(range(n))
    sizes = [b - a for a, b in chunks]
    assert all(s * per <= cap or s == 1 for s in sizes)
    # as even as possible: few distinct buffer sizes
    assert not sizes or max(sizes) - min(sizes) <= 1


CONVS = [dict(x=(3, 2, 9, 8), w=(4, 2, 3, 3), stride=1, padding=1),    # dx as a convolution of g
         dict(x=(3, 2, 9, 8), w=(4, 2, 3, 3), stride=2, padding=1),    # dx through col2im
         dict(x=(2, 3, 7, 7), w=(5, 3, 1, 1), stride=2, padding=0),    # pointwise with a stride
         dict(x=(2, 3, 6, 5), w=(2, 3, 1, 1), stride=1, padding=0)]    # pointwise


@pytest.mark.parametrize("cap", [None, 1])  # one chunk, or a chunk per image (a 1-byte cap)
@pytest.mark.parametrize("case", CONVS)
def test_cuda_convolution_matches_the_reference_with_no_hidden_copies(monkeypatch, case, cap):
    if cap is not None:
        monkeypatch.setattr(conv_gpu, "COLUMN_CAP_BYTES", cap)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(case["x"]), rng.standard_normal(case["w"])
    g = None

    def run(device):
        nonlocal g
        xt = tg.Tensor(x, requires_grad=True, device=device)
        wt = tg.Tensor(w, requires_grad=True, device=device)
        y = F.conv2d(xt, wt, stride=case["stride"], padding=case["padding"])
        if g is None:
            g = rng.standard_normal(y.shape)
        y.backward(tg.Tensor(g, device=device))
        return y.numpy(), xt.grad.numpy(), wt.grad.numpy()
    ref = run("cpu")
    with fake_cupy.installed():
        fake_cupy.counter.reset()
        got = run("cuda")
        assert fake_cupy.counter.names.get(("copy", "matmul_hidden_copy"), 0) == 0
        assert fake_cupy.counter.calls.get("gemm", 0) >= 3
    for a, b, what in zip(got, ref, ("y", "dx", "dw")):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11, err_msg=what)
