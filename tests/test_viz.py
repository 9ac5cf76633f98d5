"""tg.viz.record() and to_dot: what one forward and backward did, op by op, drawn as a graph
with values, signed gradients and op settings."""
import re

import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo.models import BasicBlock
from tinygrad_yolo.nn import functional as F


def leaf(values):
    return tg.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_record_gives_each_gradient_and_every_contribution():
    x, w = leaf([1.0, 2.0]), leaf([0.5, -1.0])
    with tg.viz.record() as rec:
        a = x * w
        b = a + x  # x is used twice: by Mul and by Add
        y = b.sum()
        y.backward()
    np.testing.assert_array_equal(rec.grad(b), [1.0, 1.0])
    np.testing.assert_array_equal(rec.grad(a), [1.0, 1.0])
    parts = rec.contributions(x)
    assert [fn.name for fn, _, _ in parts] == ["Add", "Mul"]  # the order backward() sent them
    np.testing.assert_array_equal(parts[0][2], [1.0, 1.0])    # from Add: the gradient of b
    np.testing.assert_array_equal(parts[1][2], [0.5, -1.0])   # from Mul: dL/da * w
    np.testing.assert_array_equal(rec.grad(x), x.grad.numpy())
    np.testing.assert_array_equal(rec.grad(w), w.grad.numpy())
    assert [fn.name for fn in rec.visits] == ["Sum", "Add", "Mul"]


def test_trace_lists_the_visits_and_the_running_sums():
    x, w = leaf([1.0, 2.0]), leaf([0.5, -1.0])
    with tg.viz.record() as rec:
        a = x * w
        b = a + x
        y = b.sum()
        y.backward()
    lines = rec.trace({"x": x, "w": w, "a": a, "b": b, "y": y}).splitlines()
    assert lines == ["1. Sum: gradient of y = 1",
                     "     -> b += [1 1]",
                     "2. Add: gradient of b = [1 1]",
                     "     -> a += [1 1]",
                     "     -> x += [1 1]",
                     "3. Mul: gradient of a = [1 1]",
                     "     -> x += [0.5 -1]   (now [1.5 0])",
                     "     -> w += [1 2]"]


def test_broadcast_gradients_are_recorded_at_the_input_shape():
    x, bias = leaf(np.ones((2, 3))), leaf([1.0, 2.0, 3.0])
    with tg.viz.record() as rec:
        (x + bias).sum().backward()
    (_, _, g), = rec.contributions(bias)
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])  # summed over the broadcast rows


def test_to_dot_shows_values_signed_gradients_and_the_parts_that_meet():
    x, w = leaf([1.0, -2.0]), leaf([0.5, -1.0])
    with tg.viz.record() as rec:
        a = x * w
        y = (a + x).relu().sum()
        y.backward()  # no retain_graph: the record still has the graph
    dot = tg.viz.to_dot(y, {"x": x, "w": w, "a": a}, record=rec)
    # a named intermediate, ReLU-masked
    assert "a\\n(2,) float64\\ndata [0.5 2]\\ngrad [1 0]" in dot
    # x feeds Mul and Add: each edge carries its part, and the parts add up to x's gradient
    parts = re.findall(r'label="grad part \[([^\]]*)\]"', dot)
    assert sorted(parts) == ["0.5 0", "1 0"]
    assert "x\\n(2,) float64\\ndata [1 -2]\\ngrad [1.5 0]" in dot
    assert "(freed)" not in dot


def test_op_settings_are_drawn():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((1, 2, 6, 6)), requires_grad=True)
    w = tg.Tensor(np.random.default_rng(1).standard_normal((3, 2, 3, 3)), requires_grad=True)
    with tg.viz.record() as rec:
        y = F.max_pool2d(F.conv2d(x, w, stride=2, padding=1), 2).sum(axis=1)
    dot = tg.viz.to_dot(y, record=rec)
    assert "Conv2d\\nkernel 3x3, stride 2, padding 1" in dot
    assert "MaxPool2d\\nkernel 2x2, stride 2, padding 0" in dot
    assert "Sum\\naxis 1" in dot


def test_a_basic_block_add_passes_one_gradient_to_both_inputs():
    tg.seed(0)
    block = BasicBlock(2, 4, stride=2).double()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 2, 4, 4)), requires_grad=True)
    with tg.viz.record() as rec:
        out = block(x)
        (out * np.random.default_rng(1).standard_normal(out.shape)).sum().backward()
    add = next(fn for fn in rec.ops if fn.name == "Add")
    g_out = rec.out_grad[id(add)]
    branch, shortcut = rec.sent[id(add)]
    np.testing.assert_array_equal(branch, g_out)
    np.testing.assert_array_equal(shortcut, g_out)
    # the input feeds conv1 and the projection: two parts, adding up to x.grad
    parts = [g for _, _, g in rec.contributions(x)]
    assert len(parts) == 2
    np.testing.assert_allclose(parts[0] + parts[1], x.grad.numpy(), rtol=0, atol=1e-12)


def test_large_values_are_not_kept():
    x = leaf(np.ones(100))
    with tg.viz.record(max_values=10) as rec:
        y = (x * 2.0).sum()
    mul = rec.ops[0]
    assert rec.info[id(mul)]["value"] is None and rec.value(y) == 200.0
