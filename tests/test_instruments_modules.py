"""Module hooks: forward hooks and full backward hooks (hook(module, grad_output))."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.models import BasicBlock


def linear64(n_in, n_out, seed=0):
    tg.seed(seed)
    return nn.Linear(n_in, n_out).double()


def data(shape, seed=1):
    return tg.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_backward_hook_sees_the_output_gradient_once_per_backward():
    m = linear64(3, 2)
    x, w = data((4, 3)), np.random.default_rng(2).standard_normal((4, 2))
    seen = []
    m.register_full_backward_hook(lambda mod, g: seen.append((mod, g.numpy())))
    out = m(x)
    (out * w).sum().backward()
    assert len(seen) == 1 and seen[0][0] is m
    np.testing.assert_array_equal(seen[0][1], w)  # d sum(out * w) / d out = w


def test_backward_hook_agrees_with_retain_grad_inside_a_network():
    tg.seed(0)
    block = BasicBlock(2, 2).double()
    seen = []
    block.register_full_backward_hook(lambda mod, g: seen.append(g.numpy()))
    x = data((2, 2, 5, 5))
    out = block(x)
    out.retain_grad()
    (out * out).sum().backward()
    np.testing.assert_array_equal(seen[0], out.grad.numpy())


def test_backward_hook_can_replace_the_gradient():
    x = data((4, 3))
    reference = linear64(3, 2)
    reference(x).sum().backward()
    m = linear64(3, 2)
    m.register_full_backward_hook(lambda mod, g: g * 2.0)
    m(x.detach()).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), 2 * reference.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.bias.grad.numpy(), 2 * reference.bias.grad.numpy(), rtol=1e-12)


def test_backward_hooks_chain_in_registration_order():
    m = linear64(3, 2)
    seen = []
    m.register_full_backward_hook(lambda mod, g: g + 1.0)
    m.register_full_backward_hook(lambda mod, g: seen.append(g.numpy()))
    m(data((4, 3))).sum().backward()
    # the second saw the first's result
    np.testing.assert_array_equal(seen[0], np.full((4, 2), 2.0))


def test_pass_through_module_hook_sees_only_its_own_share():
    """Identity returns its input: the hook must not see the gradient of the input's other uses."""
    ident = nn.Identity()
    seen = []
    ident.register_full_backward_hook(lambda mod, g: seen.append(g.numpy()))
    x = data((3,))
    y = ident(x) * 3.0 + x  # x also reaches the loss directly
    y.sum().backward()
    np.testing.assert_array_equal(seen[0], np.full(3, 3.0))
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 4.0))


def test_removed_hook_and_no_grad_do_not_run():
    m = linear64(3, 2)
    calls = []
    handle = m.register_full_backward_hook(lambda mod, g: calls.append(1))
    with tg.no_grad():
        out = m(data((4, 3)))
    assert not out.requires_grad and not calls
    handle.remove()
    m(data((4, 3))).sum().backward()
    assert not calls


def test_hook_runs_once_per_forward_call():
    m = linear64(3, 3)
    calls = []
    m.register_full_backward_hook(lambda mod, g: calls.append(g.shape))
    m(m(data((2, 3)))).sum().backward()  # the module is used twice
    assert calls == [(2, 3), (2, 3)]


def test_backward_hook_needs_a_tensor_output():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    m = Pair()
    m.register_full_backward_hook(lambda mod, g: None)
    with pytest.raises(TypeError, match="Pair has a backward hook.*got tuple"):
        m(data((2,)))


def test_forward_hook_sees_inputs_and_can_replace_output():
    m = linear64(3, 2)
    seen = []
    m.register_forward_hook(lambda mod, inputs, out: seen.append((inputs[0].shape, out.shape)))
    handle = m.register_forward_hook(lambda mod, inputs, out: out * 0.0)
    out = m(data((4, 3)))
    assert seen == [((4, 3), (4, 2))]
    np.testing.assert_array_equal(out.numpy(), np.zeros((4, 2)))
    handle.remove()
    assert np.abs(m(data((4, 3))).numpy()).sum() > 0
