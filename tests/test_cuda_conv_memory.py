"""The CUDA convolution's dW needs no (N, K, C·R·S) temporary: one GEMM with k = N·Ho·Wo per chunk
of images (cuda/conv.py), measured by testing/fake_cupy's allocation counter, and its numbers are
the reference's (ops/conv.py) in float64."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import dispatch
from tinygrad_yolo.cuda import conv as cuda_conv
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.testing import fake_cupy
from tinygrad_yolo.testing.counting import counter

# (x shape, w shape, stride, padding): many output channels over small maps, where the per-image
# products (N, K, Q) outweigh everything else the backward allocates
CASES = [((16, 32, 3, 3), (128, 32, 3, 3), 1, 1),    # "cuda", dx as a convolution
         ((16, 32, 5, 5), (128, 32, 3, 3), 2, 1),    # "cuda", dx by col2im
         ((16, 64, 2, 2), (128, 64, 1, 1), 1, 0),    # "cuda-pointwise"
         ((16, 64, 4, 4), (128, 64, 1, 1), 2, 0),    # "cuda-pointwise", strided
         # large maps (Ho·Wo >= C·R·S): a GEMM per image, added up with beta = 1
         ((16, 2, 9, 9), (256, 2, 3, 3), 2, 1),      # "cuda"
         ((16, 4, 4, 4), (64, 4, 1, 1), 1, 0)]       # "cuda-pointwise"


def _arrays(xs, ws, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])


def _backward(device, x, w, b, stride, padding, measure=False):
    xt, wt, bt = (tg.Tensor(a, requires_grad=True, device=device) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    g = tg.Tensor(np.random.default_rng(1).standard_normal(y.shape), device=device)
    before = counter.live
    counter.reset()
    y.backward(g)
    peak = counter.peak - before
    grads = [t.grad.numpy() for t in (xt, wt, bt)]
    return grads, (max(counter.allocs, default=0), peak) if measure else None


@pytest.mark.parametrize("xs,ws,stride,padding", CASES)
def test_dw_allocates_no_per_image_products(xs, ws, stride, padding):
    x, w, b = _arrays(xs, ws)
    N, K, Q = xs[0], ws[0], ws[1] * ws[2] * ws[3]
    with fake_cupy.installed():
        got, (largest, peak) = _backward("cuda", x, w, b, stride, padding, measure=True)
    per_image_products = N * K * Q * x.itemsize
    assert largest < per_image_products / 2, (largest, per_image_products)
    assert peak < per_image_products, (peak, per_image_products)
    want, _ = _backward("cpu", x, w, b, stride, padding)
    for name, a, e in zip(("dx", "dw", "db"), got, want):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=name)


def test_the_cases_take_the_cuda_paths():
    with fake_cupy.installed() as cp:
        for xs, ws, stride, padding in CASES:
            x, w = cp.zeros(xs), cp.zeros(ws)
            path = dispatch.conv2d_path(x, w, stride, padding, 1)
            assert path == ("cuda-pointwise" if ws[2] == 1 else "cuda")


def test_dw_adds_up_over_chunks_of_images(monkeypatch):
    # a cap of one image's columns: one GEMM per image, added into dw with beta = 1
    monkeypatch.setattr(cuda_conv, "COLUMN_CAP_BYTES", 1)
    x, w, b = _arrays((3, 4, 5, 5), (6, 4, 3, 3), seed=2)
    with fake_cupy.installed():
        got, _ = _backward("cuda", x, w, b, 1, 1)
    want, _ = _backward("cpu", x, w, b, 1, 1)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)
