"""A NaN goes through the fused batch norm + ReLU as it goes through the CPU path: NaN in, NaN
out, at the same places, forward and backward (kernels/batchnorm.cu once turned it into 0, so a
divergence trained on with finite losses on the GPU where the CPU run stopped). Checked with the
.cu sources compiled as host C++ (the `cuda` fixture of test_fused_kernels.py) and with
fake_cupy's NumPy emulations, which the launch counter runs."""
import numpy as np
import pytest

from test_fused_kernels import _data, _run, cuda, host_lib  # noqa: F401  (pytest fixtures)
from tinygrad_yolo.testing import fake_cupy

SHAPE = (3, 2, 4, 5)


def _with_nan(training, relu, residual, where="x"):
    x, w, b, r, G = _data(SHAPE, np.float64, seed=3, offset=False)
    {"x": x, "r": r, "g": G}[where][1, 0, 2, 3] = np.nan
    C = SHAPE[1]
    rm, rv = x.reshape(3, C, -1).mean(axis=(0, 2)), np.ones(C)
    rm[np.isnan(rm)] = 0.0
    return (x, w, b, r, G, training, relu, residual, rm, rv)


def _same_with_nans(got, ref):
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(np.isnan(got[k]), np.isnan(ref[k]), err_msg=k)
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-10, atol=1e-10, err_msg=k)


CASES = [(training, relu, residual, where)
         for training in (True, False) for relu, residual in ((True, False), (True, True),
                                                              (False, False))
         for where in ("x", "r", "g") if residual or where != "r"]


@pytest.mark.parametrize("training,relu,residual,where", CASES)
def test_a_nan_propagates_through_the_host_compiled_kernels_as_on_the_cpu(
        cuda, training, relu, residual, where):  # noqa: F811
    args = _with_nan(training, relu, residual, where)
    ref = _run("cpu", *args)
    assert np.isnan(ref["y" if where != "g" else "dw"]).any()  # the case has a NaN to carry
    _same_with_nans(_run("cuda", *args), ref)


@pytest.mark.parametrize("training,relu,residual,where", CASES)
def test_a_nan_propagates_through_the_stand_in_as_on_the_cpu(training, relu, residual, where):
    args = _with_nan(training, relu, residual, where)
    ref = _run("cpu", *args)
    with fake_cupy.installed():
        got = _run("cuda", *args)
    _same_with_nans(got, ref)
