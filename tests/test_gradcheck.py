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
