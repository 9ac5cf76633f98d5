"""The names a PyTorch user types from habit, with PyTorch's semantics; NumPy's spellings keep
working beside them (and where the two libraries differ, the spelling decides)."""
import math
import os
import pickle

import numpy as np
import pytest

import tinygrad_yolo as tg

A = np.arange(12.0).reshape(3, 4) % 5


def t(requires_grad=True):
    return tg.Tensor(A.copy(), requires_grad=requires_grad)


@pytest.mark.parametrize("method, numpy_fn", [("sum", np.sum), ("mean", np.mean)])
def test_both_spellings_on_sum_and_mean(method, numpy_fn):
    x = t()
    for kwargs in [dict(dim=1, keepdim=True), dict(axis=1, keepdims=True), dict(dim=(0, 1)),
                   dict(dim=[0, 1]), dict(dim=0), dict(axis=0, keepdim=True), dict()]:
        axis = kwargs.get("axis", kwargs.get("dim"))
        axis = tuple(axis) if isinstance(axis, list) else axis
        keep = kwargs.get("keepdims", kwargs.get("keepdim", False))
        np.testing.assert_allclose(getattr(x, method)(**kwargs).numpy(),
                                   numpy_fn(A, axis=axis, keepdims=keep))
    np.testing.assert_allclose(getattr(x, method)(1, True).numpy(),
                               numpy_fn(A, axis=1, keepdims=True))
    getattr(x, method)(dim=1).sum().backward()
    assert x.grad.shape == A.shape


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "argmax", "argmin"])
def test_both_spellings_at_once_is_an_error(method):
    with pytest.raises(TypeError, match="pass one of them"):
        getattr(t(), method)(axis=0, dim=1)
    with pytest.raises(TypeError, match="pass one of them"):
        getattr(t(), method)(0, keepdims=True, keepdim=False)


def test_softmax_and_log_softmax_take_dim():
    x = t()
    np.testing.assert_allclose(x.softmax(dim=-1).numpy(), x.softmax(-1).numpy())
    np.testing.assert_allclose(x.softmax(dim=0).numpy(), x.softmax(axis=0).numpy())
    np.testing.assert_allclose(x.log_softmax(dim=0).numpy(), np.log(x.softmax(0).numpy()))
    with pytest.raises(TypeError, match="pass one of them"):
        x.softmax(axis=0, dim=1)


def test_max_with_dim_is_pytorchs_values_and_indices():
    x = tg.Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), requires_grad=True)
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == np.int64 and not indices.requires_grad
    out = x.max(dim=0, keepdim=True)
    assert out.values.shape == (1, 3) and out.indices.tolist() == [[1, 0, 1]]
    assert x.min(dim=1).indices.tolist() == [0, 1]
    # NumPy's spelling (and a positional axis): the values alone
    np.testing.assert_array_equal(x.max(axis=1).numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(x.max(1).numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(x.min(axis=0).numpy(), [1.0, 0.0, 2.0])
    assert x.max().item() == 7.0
    # the gradient flows through the values
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
    with pytest.raises(TypeError, match="takes one dimension"):
        x.max(dim=(0, 1))


def test_argmax_and_argmin():
    x = tg.Tensor(np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 3.0]]))
    assert x.argmax(dim=1).tolist() == [1, 0]  # the first of tied maxima, as NumPy and PyTorch
    assert x.argmax(axis=0, keepdims=True).tolist() == [[1, 0, 0]]
    assert x.argmax().item() == 3 and x.argmin().item() == 4
    assert x.argmin(dim=1, keepdim=True).tolist() == [[0], [1]]
    with pytest.raises(ValueError, match="out of range"):
        x.argmax(dim=2)
    with pytest.raises(ValueError, match="empty"):
        tg.Tensor(np.zeros((0, 2))).argmax()


def test_clone_is_a_differentiable_copy():
    x = t()
    c = x.clone()
    assert not np.shares_memory(c.data, x.data) and c.requires_grad
    c.data[0, 0] = -1  # its own memory
    assert x.data[0, 0] == A[0, 0]
    (x.clone() * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(A.shape, 3.0))


def test_requires_grad_():
    x = t(requires_grad=False)
    assert x.requires_grad_() is x and x.requires_grad
    assert x.requires_grad_(False) is x and not x.requires_grad
    with pytest.raises(TypeError, match="floating-point"):
        tg.Tensor(np.arange(3)).requires_grad_()


def test_size_is_numpys_count_and_pytorchs_method():
    x = t()
    assert x.size == 12 and isinstance(x.size, int)
    assert x.size() == (3, 4) and x.size(1) == 4 and x.size(-2) == 3
    assert x.numel() == 12 and x.dim() == 2
    assert pickle.loads(pickle.dumps(x.size)) == 12  # pickles as a plain int


def test_in_place_methods():
    x = t(requires_grad=False)
    assert x.zero_() is x and not x.numpy().any()
    x.fill_(2.5).add_(tg.Tensor(np.ones((3, 4))), alpha=2).mul_(2)
    np.testing.assert_array_equal(x.numpy(), np.full((3, 4), 9.0))
    x.copy_(A)
    np.testing.assert_array_equal(x.numpy(), A)
    p = t()
    with pytest.raises(RuntimeError, match="not recorded in the graph"):
        p.zero_()
    with tg.no_grad():
        p.mul_(0.5)  # as an optimizer step does
    np.testing.assert_array_equal(p.numpy(), A * 0.5)
    # on memory a live graph saved: allowed, and that graph's backward refuses (PyTorch's rule)
    y = (p * p).sum()
    with tg.no_grad():
        p.copy_(np.ones((3, 4)))
    with pytest.raises(RuntimeError, match="Mul: input 0 .* was modified in place"):
        y.backward()


def grads_with_norm(values):
    params = [tg.Tensor(np.zeros_like(v), requires_grad=True) for v in values]
    for p, v in zip(params, values):
        p.grad = tg.Tensor(np.array(v, dtype=np.float64))
    return params


def test_clip_grad_norm_():
    params = grads_with_norm([np.array([3.0, 0.0]), np.array([[4.0]])])  # total norm 5
    total = tg.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(total, tg.Tensor) and total.item() == pytest.approx(5.0)
    clipped = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params))
    # PyTorch's scale: max_norm / (norm + 1e-6)
    assert clipped == pytest.approx(1.0 * 5.0 / (5.0 + 1e-6))
    # below max_norm: untouched; parameters without a gradient are skipped
    params = grads_with_norm([np.array([0.3, 0.4])]) + [tg.Tensor(np.zeros(2), requires_grad=True)]
    assert tg.nn.utils.clip_grad_norm_(params, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), [0.3, 0.4])
    # other norms
    params = grads_with_norm([np.array([3.0, -4.0])])
    assert tg.nn.utils.clip_grad_norm_(params, 10.0, norm_type=math.inf).item() == 4.0
    assert tg.nn.utils.clip_grad_norm_(params, 10.0, norm_type=1).item() == pytest.approx(7.0)
    assert tg.nn.utils.clip_grad_norm_(params[0], 2.0, norm_type=1).item() == pytest.approx(7.0)
    np.testing.assert_allclose(params[0].grad.numpy(), np.array([3.0, -4.0]) * 2 / (7 + 1e-6))
    params = grads_with_norm([np.array([np.inf, 1.0])])
    with pytest.raises(RuntimeError, match="total norm"):
        tg.nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm"):
        tg.nn.utils.clip_grad_norm_(params, -1.0)


def test_clip_grad_value_():
    params = grads_with_norm([np.array([3.0, -4.0, 0.5])])
    tg.nn.utils.clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad.numpy(), [1.0, -1.0, 0.5])


def test_manual_seed_and_cuda_is_available():
    tg.manual_seed(0)
    a = (tg.randn(3).numpy(), tg.nn.Linear(2, 2).weight.numpy())
    tg.manual_seed(0)
    b = (tg.randn(3).numpy(), tg.nn.Linear(2, 2).weight.numpy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert tg.cuda.is_available() is tg.backend.cuda_available()
    assert (tg.cuda.device_count() > 0) is tg.cuda.is_available()
    tg.cuda.synchronize()


def test_save_to_a_pt_path_writes_that_path(tmp_path):
    path = tmp_path / "model.pt"
    assert tg.save({"w": np.arange(3.0)}, path) == str(path)
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
    with open(path, "rb") as f:
        assert f.read(2) == b"PK"  # a zip: NumPy's .npz, not a PyTorch pickle
    np.testing.assert_array_equal(tg.load(path)["w"], np.arange(3.0))
