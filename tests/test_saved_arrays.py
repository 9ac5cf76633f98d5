"""Autograd that can't be silently fooled: what an op saved for backward is locked while the op
lives, so an in-place write either fails at once (NumPy's read-only flag) or, through the engine's
own in-place API, makes the backward fail naming the op. Memory is unlocked again after backward."""
import gc

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.saved import is_saved, modifying


def mul_graph(w_array=None):
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = tg.Tensor(np.array([2.0, 2.0]) if w_array is None else w_array, requires_grad=True)
    return x, w, (x * w).sum()


def test_writing_a_saved_tensor_fails_at_once_and_the_gradient_stays_right():
    # the example: this used to give x.grad = [100, 100]
    x, w, y = mul_graph()
    with pytest.raises(ValueError, match="read-only"):
        w.data[...] = 100
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    w.data[...] = 100  # the graph is gone: writable again
    np.testing.assert_array_equal(w.numpy(), [100.0, 100.0])


def test_the_numpy_array_a_tensor_shares_is_locked_too():
    a = np.array([2.0, 2.0])
    x, w, y = mul_graph(a)
    assert w.data is a  # Tensor(numpy_array) shares memory, like torch.from_numpy
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 100
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    a[0] = 5.0
    assert w.data[0] == 5.0


def test_a_view_and_the_array_it_views_are_locked_and_restored():
    a = np.arange(8.0)
    w = tg.Tensor(a[::2], requires_grad=True)  # a view: its owner a must be locked as well
    y = (w * w).sum()
    for write in (lambda: a.__setitem__(0, 9.0), lambda: w.data.__setitem__(0, 9.0)):
        with pytest.raises(ValueError, match="read-only"):
            write()
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), 2 * np.arange(0.0, 8.0, 2.0))
    assert a.flags.writeable and w.data.flags.writeable


def test_saved_outputs_are_locked():
    x = tg.Tensor(np.array([0.5, 1.0]), requires_grad=True)
    y = x.exp()  # Exp saves its output for backward
    with pytest.raises(ValueError, match="read-only"):
        y.data[...] = 0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]))


def test_views_made_by_ops_while_locked_become_writable_with_their_memory():
    # NumPy makes every new view of a read-only array read-only: a reshape of a locked input
    # would stay read-only for good unless unlocked along with its memory
    x = tg.Tensor(np.arange(6.0), requires_grad=True)
    y = (x * x).sum()
    r = x.reshape(2, 3)
    assert not r.data.flags.writeable
    y.backward()
    assert r.data.flags.writeable


def test_an_engine_write_is_allowed_and_the_backward_names_the_op_and_input():
    x, w, y = mul_graph()
    with modifying(w.data):  # the engine's own writes (Tensor.copy_, ...): allowed, counted
        w.data[...] = 100.0
    with pytest.raises(RuntimeError) as info:
        y.backward()
    msg = str(info.value)
    assert msg.startswith("Mul: input 1 (a leaf tensor of shape (2,), float64)")
    assert "modified in place" in msg and "version 1, the forward saw 0" in msg
    np.testing.assert_array_equal(w.numpy(), [100.0, 100.0])


def test_modifying_counts_writes_to_memory_of_a_live_graph_only():
    x, w, y = mul_graph()
    free = np.zeros(2)
    with modifying(free):  # nothing holds it: nothing to do
        free += 1
    assert is_saved(w.data) and not is_saved(free)
    with modifying(w.data):
        w.data *= 2
    assert not w.data.flags.writeable  # locked again after the write
    with pytest.raises(RuntimeError, match="Mul: input 1"):
        y.backward()


def test_memory_is_unlocked_when_a_graph_is_dropped_without_backward():
    x, w, y = mul_graph()
    del y
    gc.collect()  # (CPython frees it at once; this is for other interpreters)
    assert w.data.flags.writeable and not is_saved(w.data)


def test_retain_graph_keeps_the_lock_until_the_last_backward():
    x, w, y = mul_graph()
    y.backward(retain_graph=True)
    assert not w.data.flags.writeable
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])
    assert w.data.flags.writeable


def test_memory_saved_by_two_ops_unlocks_after_both():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = tg.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    a, b = (x * w).sum(), (w * w).sum()
    a.backward()
    assert not w.data.flags.writeable  # b's op still holds w
    b.backward()
    assert w.data.flags.writeable


def test_arrays_read_only_before_stay_read_only():
    frozen = np.array([1.0, 2.0])
    frozen.flags.writeable = False
    x = tg.Tensor(frozen, requires_grad=True)
    b = tg.Tensor(np.broadcast_to(np.array([3.0]), (2,)), requires_grad=True)
    (x * b).sum().backward()
    assert not frozen.flags.writeable and not b.data.flags.writeable
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_constant_arrays_an_op_saved_are_locked():
    # where's condition is an array argument, not a tensor, but backward reads it
    cond = np.array([True, False])
    a = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = tg.where(cond, a, a * 3).sum()
    with pytest.raises(ValueError, match="read-only"):
        cond[0] = False
    y.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 3.0])


def test_a_gradient_a_graph_holds_is_replaced_not_overwritten():
    # accumulation writes .grad in place, unless a live graph saved that .grad
    w = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()
    first = w.grad
    y = (w * first).sum()  # Mul saves first.data
    (w * 3).sum().backward()
    assert w.grad is not first
    np.testing.assert_array_equal(first.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(w.grad.numpy(), [5.0, 7.0])
    y.backward()


def test_batch_norm_running_statistics_are_not_locked_by_an_eval_graph():
    # an eval-mode graph kept alive (no no_grad) must not block the next training forward,
    # which updates the running statistics in place
    bn = tg.nn.BatchNorm2d(2)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32), requires_grad=True)
    bn.eval()
    kept = bn(x)
    bn.train()
    bn(x).sum().backward()
    kept.sum().backward()
    assert not np.allclose(bn.running_mean.numpy(), 0)


def test_training_steps_leave_parameters_writable():
    model = tg.nn.Sequential(tg.nn.Conv2d(1, 2, 3, padding=1), tg.nn.BatchNorm2d(2), tg.nn.ReLU())
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tg.Tensor(np.random.default_rng(1).standard_normal((2, 1, 5, 5)).astype(np.float32))
    for _ in range(2):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()  # writes every parameter in place
    assert all(p.data.flags.writeable for p in model.parameters())
