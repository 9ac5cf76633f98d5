"""batch_norm against the same computation written with primitive Tensor ops (that composition
keeps autograd honest: its gradient is the engine's chain rule through mean, variance, sqrt and
division), on every CPU path of dispatch.BATCH_NORM, plus PyTorch's running-statistics semantics."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo import dispatch
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.ops import norm as norm_ops

from chunking import CHUNK_SIZES, chunks_of


PATHS = ["chunked", "reference"]  # the CPU entries of dispatch.BATCH_NORM


def batch_norm(path, x, running_mean, running_var, weight, bias, training):
    """BATCH_NORM entry ``path`` itself (F.batch_norm would ask the rule)."""
    op = dispatch.resolve(dispatch.BATCH_NORM, path)
    return op.apply(x, weight, bias, running_mean=running_mean, running_var=running_var,
                    training=training)


def reference_batch_norm(x, weight, bias, eps=1e-5, mean=None, var=None):
    """Primitive-op batch norm; batch statistics (biased variance) unless mean/var are given."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if mean is None:
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
    else:
        centred = x - tg.Tensor(mean.reshape(shape))
        var = tg.Tensor(var.reshape(shape))
    x_hat = centred / (var + eps).sqrt()
    return x_hat * weight.reshape(shape) + bias.reshape(shape)


@st.composite
def bn_problems(draw):
    c = draw(st.integers(1, 5))
    if draw(st.booleans()):
        shape = (draw(st.integers(2, 8)), c)
    else:
        shape = (draw(st.integers(1, 4)), c, draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        if shape[0] * shape[2] * shape[3] < 2:
            shape = (2,) + shape[1:]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
    return x, rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(shape)


def forward_backward(fn, x, w, b, g):
    ts = [tg.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = fn(*ts)
    y.backward(tg.Tensor(g))
    return [y.numpy()] + [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
@given(problem=bn_problems())
def test_training_mode_matches_the_primitive_op_composition(path, chunk_bytes, problem):
    x, w, b, g = problem
    with chunks_of(chunk_bytes):
        fused = forward_backward(lambda x, w, b: batch_norm(path, x, None, None, w, b, True), x, w,
                                 b, g)
    ref = forward_backward(reference_batch_norm, x, w, b, g)
    for name, got, want in zip(["y", "dx", "dweight", "dbias"], fused, ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
@given(problem=bn_problems(), seed=st.integers(0, 99))
def test_eval_mode_matches_the_primitive_op_composition(path, chunk_bytes, problem, seed):
    x, w, b, g = problem
    rng = np.random.default_rng(seed)
    mean, var = rng.standard_normal(x.shape[1]), rng.uniform(0.2, 3.0, x.shape[1])
    rm, rv = mean.copy(), var.copy()
    with chunks_of(chunk_bytes):
        fused = forward_backward(lambda x, w, b: batch_norm(path, x, rm, rv, w, b, False), x, w, b,
                                 g)
    ref = forward_backward(lambda x, w, b: reference_batch_norm(x, w, b, mean=mean, var=var), x, w,
                           b, g)
    for name, got, want in zip(["y", "dx", "dweight", "dbias"], fused, ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=name)
    np.testing.assert_array_equal(rm, mean)  # eval mode leaves the running statistics alone
    np.testing.assert_array_equal(rv, var)


def test_training_output_is_normalised():
    x = np.random.default_rng(0).standard_normal((8, 3, 4, 4)) * 5 + 2
    y = F.batch_norm(tg.Tensor(x), None, None, training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    # eps = 1e-5 shrinks it a little
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)


@pytest.mark.parametrize("path", [None] + PATHS)  # None: F.batch_norm, the rule's choice
@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)])
def test_running_statistics_use_momentum_and_the_unbiased_variance(as_tensor, shape, path):
    rng = np.random.default_rng(1)
    rm0, rv0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm, rv = rm0.copy(), rv0.copy()
    stats = (tg.Tensor(rm), tg.Tensor(rv)) if as_tensor else (rm, rv)
    momentum = 0.3
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        if path is None:
            F.batch_norm(tg.Tensor(x), *stats, training=True, momentum=momentum)
        else:
            op = dispatch.resolve(dispatch.BATCH_NORM, path)
            arrays = [s.data if as_tensor else s for s in stats]
            op.apply(tg.Tensor(x), tg.Tensor(np.ones(3)), tg.Tensor(np.zeros(3)),
                     running_mean=arrays[0], running_var=arrays[1], training=True,
                     momentum=momentum)
        axes = (0,) + tuple(range(2, x.ndim))
        m = x.size // 3
        rm0 = (1 - momentum) * rm0 + momentum * x.mean(axis=axes)
        rv0 = (1 - momentum) * rv0 + momentum * x.var(axis=axes) * m / (m - 1)  # unbiased
    got_m, got_v = (stats[0].numpy(), stats[1].numpy()) if as_tensor else stats
    np.testing.assert_allclose(got_m, rm0, rtol=1e-12)
    np.testing.assert_allclose(got_v, rv0, rtol=1e-12)
    if as_tensor:  # updated in place, outside the graph
        assert stats[0].data is rm and stats[0].grad is None and not stats[0].requires_grad


def test_running_statistics_are_updated_under_no_grad_and_float32_stats_stay_float32():
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    with tg.no_grad():
        F.batch_norm(tg.Tensor(np.array([[1.0, 2.0], [3.0, 6.0]])), rm, rv, training=True,
                     momentum=0.5)
    assert rm.dtype == rv.dtype == np.float32
    np.testing.assert_allclose(rm, [1.0, 2.0])          # 0.5 * batch mean [2, 4]
    np.testing.assert_allclose(rv, [0.5 + 0.5 * 2.0, 0.5 + 0.5 * 8.0])  # unbiased var [2, 8]


def test_one_value_per_channel_in_training_is_an_error():
    for shape in [(1, 4), (1, 4, 1, 1)]:
        with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 4"):
            F.batch_norm(tg.Tensor(np.zeros(shape)), None, None, training=True)
    # eval mode normalises with the running statistics: one sample is fine
    y = F.batch_norm(tg.Tensor(np.full((1, 4), 3.0)), np.full(4, 1.0), np.full(4, 4.0),
                     training=False, eps=0)
    np.testing.assert_allclose(y.numpy(), 1.0)


def test_weight_and_bias_default_to_identity():
    x = np.random.default_rng(2).standard_normal((5, 3))
    y = F.batch_norm(tg.Tensor(x), None, None, training=True, eps=0).numpy()
    np.testing.assert_allclose(y, (x - x.mean(0)) / x.std(0), rtol=1e-10)


def test_gradients_only_for_inputs_that_need_them():
    x = tg.Tensor(np.random.default_rng(3).standard_normal((4, 2, 3, 3)))
    w, b = tg.Tensor(np.ones(2), requires_grad=True), tg.Tensor(np.zeros(2))
    F.batch_norm(x, None, None, w, b, training=True).sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (2,)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("training", [True, False])
def test_float32_is_close_to_float64(training, path):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 16, 10, 10)) * 3 + 5
    w, b = rng.standard_normal(16), rng.standard_normal(16)
    g = rng.standard_normal(x.shape)
    stats = rng.standard_normal(16) + 5, rng.uniform(5, 12, 16)

    def fn(x, w, b):
        return batch_norm(path, x, stats[0].copy(), stats[1].copy(), w, b, training)
    out64 = forward_backward(fn, x, w, b, g)
    out32 = forward_backward(fn, *(a.astype(np.float32) for a in (x, w, b, g)))
    for a32, a64 in zip(out32, out64):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=2e-4 * np.abs(a64).max())


@pytest.mark.parametrize("kwargs,words", [
    (dict(x=(4,), w=(4,)), ["(N, C)", "(4,)"]),
    (dict(x=(4, 3, 2, 2), w=(2,)), ["weight must have shape (3,)", "(2,)"]),
    (dict(x=(4, 3), rm=(5,)), ["running_mean must have shape (3,)", "(5,)"]),
])
def test_shape_errors_name_the_shapes(kwargs, words):
    x = tg.Tensor(np.zeros(kwargs["x"]))
    w = tg.Tensor(np.ones(kwargs["w"])) if "w" in kwargs else None
    rm = np.zeros(kwargs["rm"]) if "rm" in kwargs else None
    with pytest.raises(ValueError) as info:
        F.batch_norm(x, rm, None if rm is None else np.ones(kwargs["rm"]), w, None, training=True)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_eval_mode_without_running_statistics_is_an_error():
    with pytest.raises(ValueError, match="running_mean and running_var are needed in eval mode"):
        F.batch_norm(tg.Tensor(np.zeros((2, 3))), None, None, training=False)


# ---- the table and the rule ---------------------------------------------------------------------
def test_the_cpu_paths_are_batch_norm_under_its_name_and_the_rule_picks_the_chunked_one():
    for name in PATHS:
        op = dispatch.resolve(dispatch.BATCH_NORM, name)
        assert issubclass(op, norm_ops.BatchNorm) and op.name == "BatchNorm", name
    x, w = np.zeros((4, 3, 2, 2)), np.ones(3)
    assert dispatch.batch_norm_path(x, w, w, None, None, True) == "chunked"
    assert not dispatch.batch_norm_fused(x)
    # a call the op refuses goes to the reference, whose error names BatchNorm
    assert dispatch.batch_norm_path(x, np.ones(2), w, None, None, True) == "reference"
    assert dispatch.batch_norm_path(x, w, w, None, None, False) == "reference"
    with pytest.raises(ValueError, match=r"^BatchNorm on input shapes .*weight must have shape"):
        F.batch_norm(tg.Tensor(x), None, None, tg.Tensor(np.ones(2)), None, training=True)
