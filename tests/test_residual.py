"""The residual block's claims, made executable (float64, hypothesis-drawn shapes and weights).

A residual block computes y = F(x) + x, with F = conv -> BN -> ReLU -> conv -> BN. Because the
addition node passes its upstream gradient unchanged to both inputs,

    dL/dx = dL/dy · ∂F/∂x  +  dL/dy

so (1) the whole block is differentiable and gradchecks; (2) x.grad is exactly the gradient
through F plus the upstream gradient; (3) with F's last BN weight (or its conv weights) at
zero the block is the identity and passes the gradient through untouched; (4) a deep stack
keeps the gradient's norm even when every F has a vanishing gradient, where the same stack
without skips loses it; (5) when the block halves the resolution and doubles the channels,
the shortcut is either zero-padded subsampling ("A") or a 1x1 stride-2 projection + BN ("B").

Built from nn.functional and plain Tensors only (no Modules), BN in training mode with at
least two values per channel so that its batch statistics are well defined.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo.nn import functional as F


def conv_bn(x, w, gamma, beta, stride=1, padding=1):
    return F.batch_norm(F.conv2d(x, w, stride=stride, padding=padding), None, None, gamma, beta,
                        training=True)


def branch(x, w1, g1, b1, w2, g2, b2, stride=1):
    """F(x) = BN(conv(ReLU(BN(conv(x)))))."""
    return conv_bn(F.relu(conv_bn(x, w1, g1, b1, stride)), w2, g2, b2)


def relu_margin(x, w1, g1, b1, stride=1):
    """Distance of the ReLU's inputs from its kink (gradchecks need it away from 0)."""
    with tg.no_grad():
        out = conv_bn(tg.Tensor(x), *(tg.Tensor(a) for a in (w1, g1, b1)), stride)
        return float(np.abs(out.numpy()).min())


@st.composite
def blocks(draw, widen=False):
    """x and the weights of one block; ``widen``: stride 2 and twice the channels out."""
    n, c = draw(st.integers(2, 3), label="N"), draw(st.integers(1, 3), label="C")
    h, w = draw(st.integers(2, 6), label="H"), draw(st.integers(2, 6), label="W")
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16), label="seed"))
    co = 2 * c if widen else c
    x = rng.standard_normal((n, c, h, w))
    weights = [rng.standard_normal((co, c, 3, 3)) / 3, rng.uniform(0.5, 1.5, co),
               rng.standard_normal(co) * 0.1,
               rng.standard_normal((co, co, 3, 3)) / 3, rng.uniform(0.5, 1.5, co),
               rng.standard_normal(co) * 0.1]
    return x, weights, rng


def tensors(*arrays):
    return [tg.Tensor(a, requires_grad=True) for a in arrays]


# (1) -----------------------------------------------------------------------------------------
@given(block=blocks())
def test_residual_block_gradchecks(block):
    x, weights, _ = block
    assume(relu_margin(x, *weights[:3]) > 1e-4)
    assert tg.gradcheck(lambda x, *ws: branch(x, *ws) + x, tensors(x, *weights))


# (2) -----------------------------------------------------------------------------------------
@given(block=blocks())
def test_gradient_splits_into_branch_plus_upstream(block):
    x, weights, rng = block
    upstream = rng.standard_normal(x.shape)

    xs, *ws = tensors(x, *weights)
    y = branch(xs, *ws) + xs
    y.backward(tg.Tensor(upstream))

    xb, *wb = tensors(x, *weights)
    branch(xb, *wb).backward(tg.Tensor(upstream))  # F alone, same upstream gradient

    np.testing.assert_allclose(xs.grad.numpy(), xb.grad.numpy() + upstream, rtol=0, atol=1e-10)
    for a, b in zip(ws, wb):  # the skip touches no weight
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=0, atol=1e-10)


# (3) -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("zeroed", ["last BN weight", "last conv weight", "both conv weights"])
@given(block=blocks())
def test_block_is_the_identity_when_its_branch_is_zeroed(zeroed, block):
    x, (w1, g1, b1, w2, g2, b2), rng = block
    if zeroed == "last BN weight":
        g2, b2 = np.zeros_like(g2), np.zeros_like(b2)
    else:
        w2, b2 = np.zeros_like(w2), np.zeros_like(b2)  # BN of an all-zero map is its bias
        if zeroed == "both conv weights":
            w1 = np.zeros_like(w1)
    xs = tg.Tensor(x, requires_grad=True)
    y = branch(xs, *(tg.Tensor(a) for a in (w1, g1, b1, w2, g2, b2))) + xs
    np.testing.assert_array_equal(y.numpy(), x)  # exactly: F(x) is exactly 0
    upstream = rng.standard_normal(x.shape)
    y.backward(tg.Tensor(upstream))
    np.testing.assert_array_equal(xs.grad.numpy(), upstream)


# (4) -----------------------------------------------------------------------------------------
DEPTH = 50


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5)),
       seed=st.integers(0, 2 ** 16))
def test_skips_keep_the_gradient_through_a_deep_stack(shape, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    # Each conv has gain ~0.01, so each branch's Jacobian is ~1e-4: its gradient vanishes.
    scale = 0.01 / np.sqrt(9 * c)
    convs = [(rng.standard_normal((c, c, 3, 3)) * scale, rng.standard_normal((c, c, 3, 3)) * scale)
             for _ in range(DEPTH)]
    x0, upstream = rng.standard_normal(shape), rng.standard_normal(shape)

    def input_gradient(skip):
        x = tg.Tensor(x0, requires_grad=True)
        h = x
        for w1, w2 in convs:
            f = F.conv2d(F.relu(F.conv2d(h, tg.Tensor(w1), padding=1)), tg.Tensor(w2), padding=1)
            h = f + h if skip else f
        h.backward(tg.Tensor(upstream))
        return np.linalg.norm(x.grad.numpy())

    ratio_with_skips = input_gradient(skip=True) / np.linalg.norm(upstream)
    ratio_without = input_gradient(skip=False) / np.linalg.norm(upstream)
    assert abs(ratio_with_skips - 1) < 0.01, ratio_with_skips
    assert ratio_without < 1e-100, ratio_without


# (5) -----------------------------------------------------------------------------------------
def shortcut_a(x, c_out):
    """Option A: subsample by 2 and pad the new channels with zeros (no parameters)."""
    sub = x[:, :, ::2, ::2]
    return sub.pad(((0, 0), (0, c_out - x.shape[1]), (0, 0), (0, 0)))


def shortcut_b(x, w, gamma, beta):
    """Option B: 1x1 stride-2 projection conv + BN."""
    return conv_bn(x, w, gamma, beta, stride=2, padding=0)


@given(block=blocks(widen=True))
def test_downsampling_block_with_zero_padding_shortcut(block):
    x, weights, _ = block
    assume(relu_margin(x, *weights[:3], stride=2) > 1e-4)
    c_out = weights[0].shape[0]

    def fn(x, *ws):
        return branch(x, *ws, stride=2) + shortcut_a(x, c_out)
    with tg.no_grad():
        y = fn(tg.Tensor(x), *(tg.Tensor(w) for w in weights))
    assert y.shape == (x.shape[0], c_out, -(-x.shape[2] // 2), -(-x.shape[3] // 2))
    assert tg.gradcheck(fn, tensors(x, *weights))


@given(block=blocks(widen=True))
def test_downsampling_block_with_projection_shortcut(block):
    x, weights, rng = block
    assume(relu_margin(x, *weights[:3], stride=2) > 1e-4)
    c, c_out = x.shape[1], weights[0].shape[0]
    projection = [rng.standard_normal((c_out, c, 1, 1)), rng.uniform(0.5, 1.5, c_out),
                  rng.standard_normal(c_out) * 0.1]

    def fn(x, w1, g1, b1, w2, g2, b2, wp, gp, bp):
        return branch(x, w1, g1, b1, w2, g2, b2, stride=2) + shortcut_b(x, wp, gp, bp)
    assert tg.gradcheck(fn, tensors(x, *weights, *projection))
