"""max_pool2d, avg_pool2d and adaptive_avg_pool2d against loop definitions (float64), on every
CPU path of dispatch.MAX_POOL2D and AVG_POOL2D, plus the rules that are easy to get wrong: ties,
padding, NaN, count_include_pad, bins."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo import dispatch
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.ops import pool as pool_ops

from chunking import CHUNK_SIZES, chunks_of
from reference import ref_adaptive, ref_avg_pool, ref_max_pool, windows


@st.composite
def pool_problems(draw, distinct=False):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.sampled_from([None, (1, 1), (2, 2), (2, 1), (3, 2)]))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)),
             draw(st.integers(max(1, kh - 2 * padding[0]), 9)),
             draw(st.integers(max(1, kw - 2 * padding[1]), 9)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = (rng.permutation(np.prod(shape)).reshape(shape) * 0.1 - 3.0 if distinct
         else rng.standard_normal(shape))
    return x, (kh, kw), stride, padding


MAX_PATHS = ["separable", "reference"]       # the CPU entries of dispatch.MAX_POOL2D
AVG_PATHS = ["channels-last", "reference"]   # and of dispatch.AVG_POOL2D


def max_pool(path, kernel, stride=None, padding=0):
    op = dispatch.resolve(dispatch.MAX_POOL2D, path)
    return lambda t: op.apply(t, kernel_size=kernel, stride=stride, padding=padding)


def avg_pool(path, kernel, stride=None, padding=0):
    op = dispatch.resolve(dispatch.AVG_POOL2D, path)
    return lambda t: op.apply(t, kernel_size=kernel, stride=stride, padding=padding)


def run(fn, x, g):
    xt = tg.Tensor(x, requires_grad=True)
    y = fn(xt)
    y.backward(tg.Tensor(g))
    return y.numpy(), xt.grad.numpy()


def _out_shape(x, kernel, stride, padding):
    wins = list(windows(x.shape, kernel, stride, padding))
    return x.shape[:2] + (wins[-1][0] + 1, wins[-1][1] + 1)


# ---- max pool -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", MAX_PATHS)
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
@given(problem=pool_problems(distinct=True))
def test_max_pool_matches_the_definition(path, chunk_bytes, problem):
    x, kernel, stride, padding = problem
    g = np.random.default_rng(0).standard_normal(_out_shape(x, kernel, stride, padding))
    with chunks_of(chunk_bytes):
        y, dx = run(max_pool(path, kernel, stride, padding), x, g)
    y_ref, dx_ref = ref_max_pool(x, kernel, stride, padding, g)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", MAX_PATHS)
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
@given(problem=pool_problems())
def test_max_pool_with_many_ties_matches_the_definition(path, chunk_bytes, problem):
    x, kernel, stride, padding = problem
    x = np.round(x)  # integers in [-3, 3]: plenty of equal maxima
    g = np.random.default_rng(0).standard_normal(_out_shape(x, kernel, stride, padding))
    with chunks_of(chunk_bytes):
        y, dx = run(max_pool(path, kernel, stride, padding), x, g)
    y_ref, dx_ref = ref_max_pool(x, kernel, stride, padding, g)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", MAX_PATHS)
def test_ties_send_the_gradient_to_the_first_maximum(path):
    x = np.array([[[[1.0, 5.0, 5.0],
                    [5.0, 2.0, 5.0],
                    [0.0, 5.0, 1.0]]]])
    # 2x2 windows, stride 1: every window holds several 5s; row-major order picks the first.
    y, dx = run(max_pool(path, 2, stride=1), x, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [5, 5]])
    # window (0,0) = [[1,5],[5,2]] -> the 5 at (0,1);  window (0,1) = [[5,5],[2,5]] -> (0,1);
    # window (1,0) = [[5,2],[0,5]] -> (1,0);            window (1,1) = [[2,5],[5,1]] -> (1,2)
    np.testing.assert_array_equal(dx[0, 0], [[0, 2, 0],
                                             [1, 0, 1],
                                             [0, 0, 0]])


@pytest.mark.parametrize("path", MAX_PATHS)
def test_padding_counts_as_minus_infinity(path):
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: a zero pad would win everywhere
    y, dx = run(max_pool(path, 3, stride=1, padding=1), x, np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(y[0, 0], [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])
    assert dx.sum() == 9 and dx[0, 0, 0, 0] == 4


@pytest.mark.parametrize("path", MAX_PATHS)
def test_nan_propagates(path):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 0, 0] = 7.0
    y = max_pool(path, 2)(tg.Tensor(x)).numpy()
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1])


@pytest.mark.parametrize("path", MAX_PATHS)
def test_nan_in_one_chunk_leaves_the_others_alone(path):
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2, 3, 4, 4)
    x[1, 0, 2, 3] = np.nan  # map 3 of 6
    g = np.ones((2, 3, 2, 2))
    with chunks_of(1):  # one map per chunk
        y, dx = run(max_pool(path, 2), x, g)
    y_ref, dx_ref = ref_max_pool(np.where(np.isnan(x), -np.inf, x), (2, 2), None, (0, 0), g)
    y_ref[1, 0, 1, 1] = np.nan  # the NaN wins its window and takes the gradient
    dx_ref[1, 0] = 0
    dx_ref[1, 0, [1, 1, 3, 2], [1, 3, 1, 3]] = 1
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_default_stride_is_the_kernel_size():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(F.max_pool2d(tg.Tensor(x), 2).numpy()[0, 0], [[5, 7], [13, 15]])


# ---- average pools ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", AVG_PATHS)
@given(problem=pool_problems())
def test_avg_pool_matches_the_definition(path, problem):
    x, kernel, stride, padding = problem
    g = np.random.default_rng(0).standard_normal(_out_shape(x, kernel, stride, padding))
    y, dx = run(avg_pool(path, kernel, stride, padding), x, g)
    y_ref, dx_ref = ref_avg_pool(x, kernel, stride, padding, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", AVG_PATHS)
def test_avg_pool_counts_padding_in_the_divisor(path):
    y = avg_pool(path, 3, stride=1, padding=1)(tg.Tensor(np.ones((1, 1, 3, 3)))).numpy()[0, 0]
    np.testing.assert_allclose(y, [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9), st.integers(1, 9)),
       out=st.tuples(st.integers(1, 5), st.integers(1, 5)), seed=st.integers(0, 99))
def test_adaptive_avg_pool_matches_the_definition(shape, out, seed):
    rng = np.random.default_rng(seed)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape[:2] + out)
    y, dx = run(lambda t: F.adaptive_avg_pool2d(t, out), x, g)
    y_ref, dx_ref = ref_adaptive(x, out, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


def test_global_average_pool():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 4))
    y, dx = run(lambda t: F.adaptive_avg_pool2d(t, 1), x, np.ones((2, 3, 1, 1)))
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 20))
    assert dx.flags.writeable  # a real array, not a broadcast view the engine can't add into


def test_adaptive_equals_avg_pool_when_sizes_divide():
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 6))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(tg.Tensor(x), (4, 2)).numpy(),
                               F.avg_pool2d(tg.Tensor(x), (2, 3)).numpy())


# ---- dtype, errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["max separable", "max reference", "avg channels-last",
                                "avg reference"])
def test_float32_is_close_to_float64(op):
    kind, path = op.split()
    fn = (max_pool if kind == "max" else avg_pool)(path, 3, 2, 1)
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 9))
    g = np.ones((2, 3, 5, 5))
    y64, dx64 = run(fn, x, g)
    y32, dx32 = run(fn, x.astype(np.float32), g.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call,words", [
    (lambda x: F.max_pool2d(x, 2, padding=2), ["padding (2, 2)", "half the kernel"]),
    (lambda x: F.avg_pool2d(x, 7), ["7x7", "larger than the padded input", "(1, 2, 5, 5)"]),
    (lambda x: F.max_pool2d(x.reshape(2, 5, 5), 2), ["4-d", "(2, 5, 5)"]),
    (lambda x: F.adaptive_avg_pool2d(x.reshape(10, 5), 1), ["4-d", "(10, 5)"]),
    (lambda x: F.max_pool2d(x, 0), ["max_pool2d: kernel_size must be positive, got 0"]),
    (lambda x: F.max_pool2d(x, 2, stride=0), ["max_pool2d: stride must be positive, got 0"]),
    (lambda x: F.avg_pool2d(x, 2, padding=-1), ["avg_pool2d: padding must be >= 0, got -1"]),
])
def test_errors_name_the_problem(call, words):
    with pytest.raises(ValueError) as info:
        call(tg.Tensor(np.zeros((1, 2, 5, 5))))
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


# ---- the tables and the rules -------------------------------------------------------------------
def test_every_path_is_a_subclass_under_the_reference_name():
    for table, reference in ((dispatch.MAX_POOL2D, pool_ops.MaxPool2d),
                             (dispatch.AVG_POOL2D, pool_ops.AvgPool2d)):
        for name in table:
            op = dispatch.resolve(table, name)
            assert issubclass(op, reference) and op.name == reference.__name__, name


def test_the_rules_pick_the_cpu_paths_and_leave_refused_calls_to_the_reference():
    x = np.zeros((2, 3, 8, 8))
    assert dispatch.max_pool2d_path(x, 3, 2, 1) == "separable"
    assert dispatch.avg_pool2d_path(x, 3, 2, 1) == "channels-last"
    assert dispatch.max_pool2d_path(x, 3, 2, 2) == "reference"     # padding over half the kernel
    assert dispatch.avg_pool2d_path(x[0], 2, None, 0) == "reference"  # not 4-d
    with pytest.raises(ValueError, match=r"^MaxPool2d on input shapes .*half the kernel"):
        F.max_pool2d(tg.Tensor(x), 3, 2, 2)
