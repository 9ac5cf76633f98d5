"""The engine: accumulation, graph freeing, no_grad, dtypes, devices, errors."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo.checks import CASES, build_example
from tinygrad_yolo.nn import functional as F
from strategies import broadcastable_shapes, make_array


def leaf(a, dtype=np.float64):
    return tg.Tensor(np.asarray(a, dtype=dtype), requires_grad=True)


# ---- hand-derived gradients ---------------------------------------------------
def test_reused_tensor_accumulates_both_paths():
    a = leaf([1.0, -2.0, 3.0])
    b = a + a          # b = 2a
    c = b * b          # c = 4a^2, dc/da = 8a
    c.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 8 * a.numpy())


def test_diamond_graph():
    x = leaf([0.5, 2.0])
    u, v = x * 3.0, x.exp()
    y = (u * v).sum()  # d/dx (3x e^x) = 3 e^x (1 + x)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp(x.numpy()) * (1 + x.numpy()))


def test_broadcasting_backward_sums_to_input_shape():
    a = leaf(np.ones((2, 3)))
    b = leaf(np.ones((3,)))
    c = leaf(np.ones((2, 1)))
    (a * b + c).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad.shape == (3,) and c.grad.shape == (2, 1)
    np.testing.assert_allclose(b.grad.numpy(), [2, 2, 2])
    np.testing.assert_allclose(c.grad.numpy(), [[3], [3]])


@given(shapes=broadcastable_shapes(), seed=st.integers(0, 99))
def test_broadcast_gradients_are_sums_over_the_broadcast_axes(shapes, seed):
    sa, sb = shapes
    a, b = make_array(sa, seed=seed), make_array(sb, seed=seed + 1)
    ta, tb = leaf(a), leaf(b)
    (ta * tb).sum().backward()
    # d/da sum(a * b) = b broadcast to the output, summed back onto a's shape (and vice versa)
    out = np.broadcast_shapes(sa, sb)
    expect_a = np.broadcast_to(b, out).copy()
    expect_b = np.broadcast_to(a, out).copy()
    for expect, shape, got in ((expect_a, sa, ta.grad), (expect_b, sb, tb.grad)):
        while expect.ndim > len(shape):
            expect = expect.sum(axis=0)
        for axis, size in enumerate(shape):
            if size == 1:
                expect = expect.sum(axis=axis, keepdims=True)
        assert got.shape == shape
        np.testing.assert_allclose(got.numpy(), expect, rtol=1e-12, atol=1e-12)


def test_chain_of_10000_ops_no_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000], rtol=1e-9)


def test_leaf_gradients_accumulate_until_zeroed():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())


def test_graph_is_freed_after_backward():
    x = leaf(np.ones(4))
    h = x * 2.0
    ref = weakref.ref(h.data)
    y = (h * h).sum()  # Mul saves both of its inputs: h's array
    del h
    gc.collect()
    assert ref() is not None, "the op that saved h's array should keep it until backward"
    y.backward()
    gc.collect()
    assert ref() is None, "backward should free the graph (saved arrays and parents)"


def test_graph_keeps_only_what_ops_saved():
    """The graph links ops, not tensors: an intermediate result that no op saved for backward
    dies with its tensor, and the backward still runs (through the op that made it)."""
    x = leaf(np.array([-1.0, 2.0]))
    h = x * 3.0
    tensor_ref, array_ref = weakref.ref(h), weakref.ref(h.data)
    y = h.relu().sum()  # ReLU saves its output, not its input h
    del h
    gc.collect()
    assert tensor_ref() is None and array_ref() is None, "the graph kept an intermediate alive"
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 3.0])


def test_hooks_and_retain_grad_of_a_dropped_intermediate():
    """A non-leaf tensor's hook lives on the op that made it, so it runs even after the tensor
    is gone (as in PyTorch); retain_grad() holds the tensor only weakly."""
    x = leaf(np.array([1.0, 2.0]))
    h = x * 2.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy()))
    h.register_hook(lambda g: g * 10.0)
    h.retain_grad()
    y = (h * h).sum()
    ref = weakref.ref(h)
    del h
    gc.collect()
    assert ref() is None
    y.backward()
    np.testing.assert_allclose(seen[0], [4.0, 8.0])  # dy/dh = 2h
    np.testing.assert_allclose(x.grad.numpy(), [80.0, 160.0])  # the replaced gradient flowed on


def test_non_scalar_backward_needs_gradient():
    x = leaf(np.ones((2, 3)))
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\)"):
        y.backward()
    y.backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.ones((2, 3)))


def test_backward_gradient_shape_checked():
    y = leaf(np.ones((2, 3))) * 2.0
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.Tensor([1.0]).backward()


# ---- grad mode ----------------------------------------------------------------
def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        y = x * x
        with tg.enable_grad():
            z = x * x
    assert y._ctx is None and not y.requires_grad
    assert z._ctx is not None and z.requires_grad
    assert tg.is_grad_enabled()


def test_no_grad_as_decorator():
    @tg.no_grad()
    def f(t):
        return t * 2.0
    assert not f(leaf([1.0])).requires_grad


def test_constants_do_not_record():
    y = tg.Tensor([1.0]) * tg.Tensor([2.0])
    assert y._ctx is None and not y.requires_grad


# ---- memory safety ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_inputs_and_upstream_never_mutated_and_grads_never_alias(name, data):
    fn, arrays, _ = build_example(name, data.draw)
    tensors = [tg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    before = [a.copy() for a in arrays]
    out = fn(*tensors)
    upstream = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    upstream_copy = upstream.copy()
    out.backward(upstream)
    for t, b in zip(tensors, before):
        np.testing.assert_array_equal(t.data, b)
    np.testing.assert_array_equal(upstream, upstream_copy)
    grads = [t.grad.data for t in tensors if t.grad is not None]
    for i, g in enumerate(grads):
        assert not np.shares_memory(g, upstream)
        assert g.flags.writeable
        for t in tensors:
            assert not np.shares_memory(g, t.data)
        for h in grads[i + 1:]:
            assert not np.shares_memory(g, h)


def test_leaf_grad_is_not_the_callers_array():
    x = leaf(np.ones(3))
    g = np.full(3, 2.0)
    (x + 0.0).backward(g)
    x.grad.data += 1
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])


# ---- dtypes -------------------------------------------------------------------
def test_lists_default_to_float32_and_scalars_keep_dtype():
    x = tg.Tensor([1, 2, 3])
    assert x.dtype == np.float32
    assert (x * 2.0).dtype == np.float32
    assert (2.5 - x).dtype == np.float32
    assert tg.Tensor([True, False]).dtype == np.bool_
    assert tg.Tensor(np.arange(3)).dtype == np.arange(3).dtype  # arrays keep their dtype
    assert tg.Tensor(np.ones(2)).dtype == np.float64


def test_mixed_precision_promotes_forward_and_grads_keep_each_dtype():
    a = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    b = tg.Tensor(np.ones(2, np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_cast_gradient_exact():
    x = tg.Tensor(np.array([1.5, -2.0], np.float32), requires_grad=True)
    (x.double() * 3.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        tg.Tensor(np.arange(3), requires_grad=True)


# ---- forward values against NumPy ---------------------------------------------
A = np.random.default_rng(1).standard_normal((3, 4))
B = np.random.default_rng(2).standard_normal((3, 4))
P = np.abs(A) + 0.5
FORWARD = [
    ("add", lambda a, b: a + b, lambda a, b: a + b),
    ("sub", lambda a, b: a - b, lambda a, b: a - b),
    ("mul", lambda a, b: a * b, lambda a, b: a * b),
    ("div", lambda a, b: a / b, lambda a, b: a / b),
    ("matmul", lambda a, b: a @ b.T, lambda a, b: a @ b.T),
    ("maximum", lambda a, b: tg.maximum(a, b), np.maximum),
    ("where", lambda a, b: tg.where(A > 0, a, b), lambda a, b: np.where(A > 0, a, b)),
    ("concat", lambda a, b: tg.concatenate([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1)),
    ("stack", lambda a, b: tg.stack([a, b], axis=2), lambda a, b: np.stack([a, b], 2)),
]
UNARY = [
    ("exp", lambda x: x.exp(), np.exp), ("log", lambda x: x.log(), np.log),
    ("sqrt", lambda x: x.sqrt(), np.sqrt), ("abs", lambda x: x.abs(), np.abs),
    ("pow", lambda x: x ** 1.5, lambda x: x ** 1.5), ("neg", lambda x: -x, np.negative),
    ("clip", lambda x: x.clip(0.6, 1.2), lambda x: np.clip(x, 0.6, 1.2)),
    ("sum", lambda x: x.sum(axis=1, keepdims=True), lambda x: x.sum(1, keepdims=True)),
    ("mean", lambda x: x.mean(axis=0), lambda x: x.mean(0)), ("max", lambda x: x.max(axis=1), lambda x: x.max(1)),
    ("min", lambda x: x.min(), np.min), ("reshape", lambda x: x.reshape(4, 3), lambda x: x.reshape(4, 3)),
    ("transpose", lambda x: x.transpose(), np.transpose), ("flatten", lambda x: x.flatten(), np.ravel),
    ("getitem", lambda x: x[[0, 2, 2], 1:], lambda x: x[[0, 2, 2], 1:]),
    ("pad", lambda x: x.pad(((1, 0), (0, 2))), lambda x: np.pad(x, ((1, 0), (0, 2)))),
    ("relu", lambda x: F.relu(x - 1), lambda x: np.maximum(x - 1, 0)),
    ("leaky_relu", lambda x: F.leaky_relu(x - 1, 0.1), lambda x: np.where(x > 1, x - 1, 0.1 * (x - 1))),
    ("sigmoid", lambda x: F.sigmoid(x), lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", lambda x: F.tanh(x), np.tanh),
    ("softmax", lambda x: F.softmax(x, 1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    ("log_softmax", lambda x: F.log_softmax(x, 1), lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
]


@pytest.mark.parametrize("name,op,ref", FORWARD, ids=[f[0] for f in FORWARD])
def test_binary_forward_matches_numpy(name, op, ref):
    np.testing.assert_allclose(op(tg.Tensor(A), tg.Tensor(B)).numpy(), ref(A, B), rtol=1e-12)


@pytest.mark.parametrize("name,op,ref", UNARY, ids=[u[0] for u in UNARY])
def test_unary_forward_matches_numpy(name, op, ref):
    np.testing.assert_allclose(op(tg.Tensor(P)).numpy(), ref(P), rtol=1e-12)


def test_cross_entropy_and_mse_forward():
    logits, target = A, np.array([0, 3, 1])
    expected = -np.mean((logits - np.log(np.exp(logits).sum(1, keepdims=True)))[np.arange(3), target])
    np.testing.assert_allclose(F.cross_entropy(tg.Tensor(logits), target).item(), expected, rtol=1e-12)
    np.testing.assert_allclose(F.mse_loss(tg.Tensor(A), tg.Tensor(B)).item(), np.mean((A - B) ** 2), rtol=1e-12)


def test_comparisons_are_not_differentiable():
    x = leaf([1.0, -1.0])
    m = x > 0
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(m.numpy(), [True, False])


# ---- conveniences ----------------------------------------------------------------
def test_item_numpy_detach_to():
    x = leaf([[2.0]])
    assert x.item() == 2.0
    n = x.numpy()
    n[0, 0] = 5.0
    assert x.item() == 2.0, "numpy() returns a copy"
    d = (x * 2.0).detach()
    assert d._ctx is None and not d.requires_grad
    assert x.to("cpu") is x
    with pytest.raises(ValueError, match="unknown device"):
        x.to("tpu")


def test_register_hook_sees_and_replaces_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy()))
    h.register_hook(lambda g: g * 0.5)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [1.5, 1.5])


def test_retain_grad_keeps_intermediate_gradient():
    x = leaf([1.0, 2.0])
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())


# ---- clear errors ---------------------------------------------------------------
def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        tg.ones(2, 3) + tg.ones(4)
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 3\)"):
        tg.ones(2, 3) @ tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(4, 2\)"):
        tg.ones(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tg.ones(2))
    with pytest.raises(TypeError, match="scalar exponent"):
        tg.ones(2) ** tg.ones(2)


@pytest.mark.skipif(tg.cuda_available(), reason="checks the error raised when CuPy/GPU is missing")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CuPy"):
        tg.Tensor([1.0], device="cuda")


def test_zero_dim_tensor_used_three_times_accumulates():
    """NumPy adds two 0-d arrays into a scalar (no __iadd__): the third contribution to a 0-d
    leaf used to crash the accumulation."""
    x = tg.Tensor(np.float64(2.0), requires_grad=True)
    ((x * x) * x + x).backward()  # d/dx (x^3 + x) = 3x^2 + 1
    assert x.grad.item() == 13.0 and x.grad.shape == ()
