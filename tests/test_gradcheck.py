"""tg.gradcheck itself: it passes correct gradients and catches wrong ones loudly."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.function import Function


class BrokenSquare(Function):
    """x**2 with a deliberately wrong backward (2x + 1 at one element)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        grad = 2 * self.x * g
        grad.reshape(-1)[-1] += 1.0
        return grad


def test_passes_correct_gradient_elementwise_and_directional():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda x: (x * x).sum(axis=0), [x])
    big = tg.Tensor(np.random.default_rng(1).standard_normal(5000), requires_grad=True)
    result = tg.check_gradients(lambda x: x * x.tanh(), [big])
    assert result.ok and result.n_checked == 4  # 4 random directions, not 5000 elements


def test_catches_wrong_backward_and_names_the_element():
    x = tg.Tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    with pytest.raises(tg.GradcheckError) as info:
        tg.gradcheck(lambda x: BrokenSquare.apply(x), [x])
    msg = str(info.value)
    assert "input 0" in msg and "shape (2, 3)" in msg and "index (1, 2)" in msg
    assert "analytic" in msg and "numeric" in msg


def test_catches_wrong_backward_along_random_directions():
    x = tg.Tensor(np.random.default_rng(2).standard_normal(3000), requires_grad=True)
    result = tg.check_gradients(lambda x: BrokenSquare.apply(x), [x])
    assert not result.ok and "random direction" in result.worst_where


def test_rejects_float32_inputs():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        tg.gradcheck(lambda x: x * x, [x])


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        tg.gradcheck(lambda x: x * x, [tg.Tensor(np.ones(3))])


def test_leaves_inputs_unchanged():
    a = np.random.default_rng(3).standard_normal(4)
    x = tg.Tensor(a.copy(), requires_grad=True)
    tg.gradcheck(lambda x: x.exp(), [x])
    np.testing.assert_array_equal(x.numpy(), a)


def test_non_contiguous_inputs_are_perturbed_in_place():
    # an NCHW view of an NHWC array: reshape(-1) of it is a copy, so perturbing that copy would
    # never reach the input and every numeric derivative would come out 0.
    from tinygrad_yolo.nn import functional as F
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 5, 5, 3))
    w = tg.Tensor(rng.standard_normal((4, 3, 3, 3)))
    x = tg.Tensor(a.transpose(0, 3, 1, 2), requires_grad=True)
    assert not x.data.flags.c_contiguous
    assert tg.gradcheck(lambda x: F.conv2d(x, w, padding=1), [x])
    # the input is the caller's array, unchanged: same object, same strides, same values
    assert x.data.base is a and x.data.strides == a.transpose(0, 3, 1, 2).strides
    np.testing.assert_array_equal(x.data, a.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("view", [lambda a: a.T, lambda a: a[::-1, ::2], lambda a: a[:, ::-2].T])
def test_strided_views_check_and_wrong_gradients_are_still_caught(view):
    a = np.random.default_rng(5).standard_normal((4, 6))
    x = tg.Tensor(view(a), requires_grad=True)
    assert tg.gradcheck(lambda x: (x * x.exp()).sum(axis=0), [x])
    with pytest.raises(tg.GradcheckError, match="index"):
        tg.gradcheck(lambda x: BrokenSquare.apply(x), [tg.Tensor(view(a), requires_grad=True)])


def test_broadcast_and_aliased_inputs_are_perturbed_on_a_copy():
    # a broadcast view's elements share memory (stride 0): the analytic gradient is taken at the
    # view, the perturbations go to a private copy; likewise an input aliasing another one
    b = np.broadcast_to(np.random.default_rng(6).standard_normal(3), (4, 3))
    x = tg.Tensor(b, requires_grad=True)
    assert tg.gradcheck(lambda x: (x * x).sum(axis=0) * x[0], [x])
    assert x.data is b and not x.data.flags.writeable
    a = np.random.default_rng(7).standard_normal(5)
    p, q = tg.Tensor(a, requires_grad=True), tg.Tensor(a[::-1], requires_grad=True)
    assert tg.gradcheck(lambda p, q: p * q.exp(), [p, q])
    np.testing.assert_array_equal(p.data, np.random.default_rng(7).standard_normal(5))
