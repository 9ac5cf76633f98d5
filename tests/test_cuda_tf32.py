"""TF32 (tg.cuda.set_tf32, train --tf32): float32 GEMMs go through cublasGemmStridedBatchedEx with
CUBLAS_COMPUTE_32F_FAST_TF32, emulated by testing/fake_cublas (inputs rounded to TF32's 10-bit
mantissa, sums in float32); float64 keeps dgemm; off by default."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.testing import fake_cupy
from tinygrad_yolo.testing.counting import counter
from tinygrad_yolo.testing.fake_cublas import round_to_tf32


@pytest.fixture
def tf32():
    tg.cuda.set_tf32(True)
    yield
    tg.cuda.set_tf32(False)


def _conv(x, w, device):
    return F.conv2d(tg.Tensor(x, device=device), tg.Tensor(w, device=device), padding=1).numpy()


def _data(dtype=np.float32):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 4, 6, 6)).astype(dtype),
            rng.standard_normal((5, 4, 3, 3)).astype(dtype))


def test_tf32_is_off_by_default():
    assert not tg.cuda.tf32_enabled()


def test_tf32_rounds_the_operands_to_10_mantissa_bits_and_sums_in_float32(tf32):
    x, w = _data()
    with fake_cupy.installed():
        counter.reset()
        got = _conv(x, w, "cuda")
        names = dict(counter.names)
    assert names.get(("gemm", "gemmStridedBatchedEx")) and ("gemm", "sgemmStridedBatched") \
        not in names
    as64 = lambda a: round_to_tf32(a).astype(np.float64)  # noqa: E731
    want = _conv(as64(x), as64(w), "cpu")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    exact = _conv(x.astype(np.float64), w.astype(np.float64), "cpu")
    assert np.abs(got - exact).max() > 1e-4  # TF32's error shows; float32's would be ~1e-6


def test_round_to_tf32_keeps_10_mantissa_bits_ties_to_even():
    one, ulp = np.float32(1), np.float32(2.0 ** -10)
    a = np.array([one + ulp / 4, one + ulp / 2, one + 3 * ulp / 2, one + 3 * ulp / 4], np.float32)
    np.testing.assert_array_equal(round_to_tf32(a), [one, one, one + 2 * ulp, one + ulp])


def test_float64_keeps_dgemm_under_tf32(tf32):
    x, w = _data(np.float64)
    with fake_cupy.installed():
        counter.reset()
        got = _conv(x, w, "cuda")
        assert counter.names[("gemm", "dgemmStridedBatched")] >= 1
    np.testing.assert_allclose(got, _conv(x, w, "cpu"), rtol=1e-12, atol=1e-12)
