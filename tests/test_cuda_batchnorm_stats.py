"""The fused batch norm's running statistics are rounded as the CPU's: in x's dtype, step by step
as ops/norm.py's in-place update (r *= 1 - momentum; r += momentum * mean), not once from a
double. bn_finalize_kernel (host-compiled, and the stand-in's emulation) is given one share per
channel, so that its batch mean and variance are exactly the ones handed to the CPU's
update_running_stats; the running statistics must then agree bit for bit."""
import numpy as np
import pytest

from test_fused_kernels import _host_emulation, host_lib  # noqa: F401  (a pytest fixture)
from tinygrad_yolo import backend
from tinygrad_yolo.ops.norm import BatchNorm
from tinygrad_yolo.testing import kernel_emulations

fused = backend.cuda_kernels("fused")
C, M, MOMENTUM = 7, 64, 0.1


def _finalize(run, dtype, seed):
    """(running_mean, running_var) after bn_finalize_kernel, and the CPU's from the same batch
    statistics."""
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(C).astype(dtype)
    m2 = (rng.random(C) * M).astype(dtype)
    rm, rv = rng.standard_normal(C).astype(dtype), (rng.random(C) + 0.5).astype(dtype)
    got_rm, got_rv = rm.copy(), rv.copy()
    outs = [np.empty(C, dtype) for _ in range(3)]
    grid, block = fused.channels_launch(C)
    args = (mean.reshape(C, 1), m2.reshape(C, 1), np.ones(C, dtype), got_rm, got_rv, *outs,
            np.int64(M), np.int32(C), np.int32(1), np.float64(1e-5), np.float64(MOMENTUM))
    run(grid, block, *args)
    ref = BatchNorm(rm.copy(), rv.copy(), True, momentum=MOMENTUM)
    ref.update_running_stats(mean, (m2 / dtype(M)).astype(dtype), M)
    return (got_rm, got_rv), (ref.running_mean, ref.running_var)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(3))
def test_the_kernel_rounds_running_statistics_as_the_cpu(host_lib, dtype, seed):  # noqa: F811
    got, want = _finalize(_host_emulation(host_lib, "bn_finalize_kernel"), dtype, seed)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype == dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(3))
def test_the_stand_in_rounds_them_the_same_way(dtype, seed):
    emulate = kernel_emulations.RAW_KERNELS["bn_finalize_kernel"]
    got, want = _finalize(lambda grid, block, *args: emulate(*args), dtype, seed)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
