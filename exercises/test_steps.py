"""The checks of every exercise step, one pytest marker per step (``pytest exercises -m step3``).

``load(name)`` (exercises/__init__.py) returns the module under test: your file in exercises/
(the default) or the reference solution in exercises/solutions/ (``--solutions``, or
EXERCISES=solutions; tests/test_exercises.py runs these same checks against the solutions
in CI). Where the project has its own
gradient-check case for an op (tinygrad_yolo/checks, what `tinygrad-yolo gradcheck` runs),
the check swaps your op into the engine and runs that very case over hypothesis-drawn
shapes, strides, paddings and dilations; the rest compares with the project's own code.
"""
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo as tg
from exercises import load
from tinygrad_yolo.checks import build_example, check_example, repro_line
from tinygrad_yolo.checks.strategies import broadcastable_shapes, shapes


def run_registered_case(name, data, swaps):
    """One hypothesis example of the project's gradient-check case ``name``, with the
    engine's pieces replaced by yours: ``swaps`` is [(engine module, attribute, your step,
    your name)]. A failure names the values hypothesis drew and prints a line that replays
    that very example with your code (``exercises.replay``)."""
    import importlib
    import os

    import exercises
    source = os.environ.get("EXERCISES", exercises.SOURCE)
    with pytest.MonkeyPatch.context() as mp:
        for module, attribute, step, mine in swaps:
            mp.setattr(importlib.import_module(module), attribute, getattr(load(step), mine))
        fn, arrays, params = build_example(name, data.draw)
        result = check_example(name, fn, arrays)
    drawn = ", ".join(f"{k}={v!r}" for k, v in params.items())
    where = "" if source == "mine" else f", source={source!r}"
    assert result.ok, (f"{result.message()}\nhypothesis drew: {drawn}\nreplay with your code: "
                       f"from exercises import replay; replay({name!r}, {swaps!r}{where}, {drawn})")


# ---- step 1: scalar autograd -------------------------------------------------------------------
def expressions():
    """A few expressions of three inputs, for Value (step 1) and tg.Tensor alike."""
    return [lambda a, b, c: a * b + c,
            lambda a, b, c: (a * b + c).relu() * a + (b ** 2) * c.exp(),
            lambda a, b, c: (a - b) / (c * c + 1.0) + 2.0 * a * a,
            lambda a, b, c: ((a + b).relu() + (a - b).relu()) ** 3 - c / (a * a + 0.5)]


@pytest.mark.step1
def test_step1_values_and_gradients_match_the_engine():
    Value = load("step1_scalar").Value
    rng = np.random.default_rng(0)
    for k, f in enumerate(expressions()):
        for _ in range(5):
            a0, b0, c0 = rng.uniform(-2, 2, 3)
            va, vb, vc = Value(a0), Value(b0), Value(c0)
            out = f(va, vb, vc)
            out.backward()
            ts = [tg.Tensor(np.float64(v), requires_grad=True) for v in (a0, b0, c0)]
            ref = f(*ts)
            ref.backward()
            assert out.data == pytest.approx(ref.item(), rel=1e-12, abs=1e-12), (
                f"expression {k}: forward")
            for name, v, t in zip("abc", (va, vb, vc), ts):
                assert v.grad == pytest.approx(t.grad.item(), rel=1e-9, abs=1e-12), (
                    f"expression {k}: d/d{name}")


@pytest.mark.step1
@given(st.floats(-3, 3), st.floats(-3, 3))
def test_step1_agrees_with_central_differences(a0, b0):
    Value = load("step1_scalar").Value

    def f(a, b):
        return (a * b + a.exp()).relu() * b + (a - b) ** 2

    a, b = Value(a0), Value(b0)
    f(a, b).backward()
    eps = 1e-6
    for name, v, plus, minus in (("a", a, (a0 + eps, b0), (a0 - eps, b0)),
                                 ("b", b, (a0, b0 + eps), (a0, b0 - eps))):
        numeric = (f(*map(Value, plus)).data - f(*map(Value, minus)).data) / (2 * eps)
        if abs(a0 * b0 + np.exp(a0)) > 1e-3:  # away from the ReLU's kink
            assert v.grad == pytest.approx(numeric, rel=1e-5, abs=1e-6), name


@pytest.mark.step1
def test_step1_a_value_used_twice_gets_both_gradients():
    Value = load("step1_scalar").Value
    a = Value(3.0)
    y = a * a + a   # dy/da = 2a + 1 = 7: three uses of a
    y.backward()
    assert a.grad == 7.0
    b = Value(2.0)
    (b + b).backward()
    assert b.grad == 2.0


@pytest.mark.step1
def test_step1_deep_chains_do_not_hit_the_recursion_limit():
    Value = load("step1_scalar").Value
    x = Value(1.0)
    y = x
    for _ in range(3 * sys.getrecursionlimit()):
        y = y + 0.5 * x
    y.backward()
    assert x.grad == pytest.approx(1 + 0.5 * 3 * sys.getrecursionlimit())


# ---- step 2: Function and backward on arrays ---------------------------------------------------
@pytest.mark.step2
@given(shape=shapes(0, 3), seed=st.integers(0, 2 ** 16))
def test_step2_gradients_match_the_engine(shape, seed):
    m = load("step2_function")
    rng = np.random.default_rng(seed)
    a0, b0 = rng.standard_normal(shape), rng.standard_normal(shape)

    def f(a, b):  # uses a twice and b three times
        return (a * b + (a * 0.5).exp() * b - b).sum()

    a, b = m.Tensor(a0, requires_grad=True), m.Tensor(b0, requires_grad=True)
    out = f(a, b)
    out.backward()
    ta, tb = tg.Tensor(a0, requires_grad=True), tg.Tensor(b0, requires_grad=True)
    ref = f(ta, tb)
    ref.backward()
    drawn = f"hypothesis drew shape {shape} for a and b"
    np.testing.assert_allclose(out.data, ref.numpy(), rtol=1e-12, err_msg=f"forward; {drawn}")
    for name, mine, theirs in (("a", a, ta), ("b", b, tb)):
        assert np.shape(mine.grad) == shape, f"{name}.grad has shape {np.shape(mine.grad)}; {drawn}"
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name}.grad; {drawn}")


@pytest.mark.step2
def test_step2_records_the_graph_only_where_a_gradient_is_needed():
    m = load("step2_function")
    x, c = m.Tensor([1.0, 2.0], requires_grad=True), m.Tensor([3.0, 4.0])
    y = x * c
    assert isinstance(y._ctx, m.Mul) and y.requires_grad and list(y._ctx.parents) == [x, c]
    z = c * c
    assert z._ctx is None and not z.requires_grad  # nothing to differentiate: nothing recorded
    (y + z).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    assert c.grad is None


@pytest.mark.step2
def test_step2_leaf_gradients_add_up_over_backward_calls():
    m = load("step2_function")
    x = m.Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])  # as in PyTorch: until you zero them


@pytest.mark.step2
def test_step2_one_input_ops_return_a_bare_array():
    """Neg, Exp and Sum return one array, not a 1-tuple: backward() must not zip over its rows."""
    m = load("step2_function")
    x = m.Tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    (-x).exp().sum().backward()
    np.testing.assert_allclose(x.grad, -np.exp(-x.data), rtol=1e-12)


@pytest.mark.step2
def test_step2_no_in_place_addition_into_a_gradient_another_input_holds():
    """Add hands the same array g to both of its inputs. Adding a later contribution into that
    array in place (+=) changes what the other input got too: x + x + x then gives 4, not 3."""
    m = load("step2_function")
    x = m.Tensor([1.0, 2.0], requires_grad=True)
    ((x + x + x) * 1.0).sum().backward()  # (* 1.0: a fresh, writable gradient reaches the Adds)
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


@pytest.mark.step2
def test_step2_deep_chains_do_not_hit_the_recursion_limit():
    m = load("step2_function")
    x = m.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3 * sys.getrecursionlimit()):
        y = y + x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3 * sys.getrecursionlimit() + 1.0])


# ---- step 3: broadcasting's sum-to-shape --------------------------------------------------------
@pytest.mark.step3
@given(pair=broadcastable_shapes(), seed=st.integers(0, 2 ** 16))
def test_step3_sum_to_is_the_adjoint_of_broadcasting(pair, seed):
    """<g, broadcast(x)> = <sum_to(g), x> for every x: exactly what makes it the gradient."""
    sum_to = load("step3_broadcast").sum_to
    rng = np.random.default_rng(seed)
    out_shape = np.broadcast_shapes(*pair)
    for shape in pair:
        g, x = rng.standard_normal(out_shape), rng.standard_normal(shape)
        summed = sum_to(g, shape)
        assert summed.shape == tuple(shape)
        expected = float((summed * x).sum())
        got = float((g * np.broadcast_to(x, out_shape)).sum())
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.step3
@pytest.mark.parametrize("case", ["add", "sub", "mul", "div"])
@given(data=st.data())
def test_step3_the_engine_runs_on_your_sum_to(case, data):
    """The project's gradient checks of the broadcasting ops, with your sum_to in backward()."""
    # (tg.tensor is also a function's name: the module is named in full)
    run_registered_case(case, data, [("tinygrad_yolo.tensor", "sum_to", "step3_broadcast",
                                      "sum_to")])


# ---- step 4: ReLU and Mul -----------------------------------------------------------------------
@pytest.mark.step4
@pytest.mark.parametrize("case, module_attr", [("mul", ("elementwise", "Mul")),
                                               ("relu", ("activation", "ReLU"))])
@given(data=st.data())
def test_step4_the_projects_gradient_checks_pass_with_your_op(case, module_attr, data):
    module, name = module_attr
    run_registered_case(case, data, [(f"tinygrad_yolo.ops.{module}", name, "step4_relu_mul",
                                      name)])


@pytest.mark.step4
def test_step4_forward_and_skipped_gradients():
    m = load("step4_relu_mul")
    a, b = np.array([[1.0, -2.0], [3.0, 0.5]]), np.array([-1.5, 2.0])
    x = tg.Tensor(a, requires_grad=True)
    y = m.Mul.apply(x, tg.Tensor(b))          # b needs no gradient
    np.testing.assert_array_equal(y.numpy(), a * b)
    assert y._ctx.backward(np.ones((2, 2)))[1] is None  # needs_input_grad said so: no work for b
    np.testing.assert_array_equal(m.ReLU.apply(x).numpy(), np.maximum(a, 0))


# ---- step 5: im2col convolution ----------------------------------------------------------------
@st.composite
def conv_geometry(draw):
    """(x shape, kh, kw, stride, padding, dilation) that make a valid convolution."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding, dilation = (draw(st.tuples(st.integers(lo, hi), st.integers(lo, hi)))
                                 for lo, hi in ((1, 3), (0, 2), (1, 2)))
    H = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 8))
    W = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 8))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    return shape, kh, kw, stride, padding, dilation


@pytest.mark.step5
@given(geometry=conv_geometry(), seed=st.integers(0, 2 ** 16))
def test_step5_im2col_matches_the_project_and_col2im_is_its_adjoint(geometry, seed):
    from tinygrad_yolo.ops.im2col import im2col
    m = load("step5_conv")
    shape, kh, kw, stride, padding, dilation = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    col = m.im2col(x, kh, kw, stride, padding, dilation)
    np.testing.assert_array_equal(col, im2col(x, kh, kw, stride, padding, dilation))
    c = rng.standard_normal(col.shape)  # <im2col(x), c> = <x, col2im(c)>
    back = m.col2im(c, shape, kh, kw, stride, padding, dilation)
    assert back.shape == shape
    assert float((col * c).sum()) == pytest.approx(float((x * back).sum()), rel=1e-10, abs=1e-10)


@pytest.mark.step5
@given(data=st.data())
def test_step5_the_projects_conv2d_gradient_check_passes_with_your_op(data):
    run_registered_case("conv2d", data, [("tinygrad_yolo.ops.conv", "Conv2d", "step5_conv",
                                          "Conv2d")])


@pytest.mark.step5
def test_step5_forward_matches_the_projects_conv2d():
    from tinygrad_yolo.nn import functional as F
    Conv2d = load("step5_conv").Conv2d
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((4, 3, 3, 2)),
               rng.standard_normal(4))
    settings = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    ref = F.conv2d(tg.Tensor(x), tg.Tensor(w), tg.Tensor(b), **settings)
    mine = Conv2d.apply(tg.Tensor(x), tg.Tensor(w), tg.Tensor(b), **settings)
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)


# ---- step 6: batch-norm backward ---------------------------------------------------------------
@pytest.mark.step6
@given(data=st.data())
def test_step6_the_projects_batch_norm_gradient_check_passes_with_your_op(data):
    run_registered_case("batch_norm_train", data,
                        [("tinygrad_yolo.ops.norm", "BatchNorm", "step6_batchnorm", "BatchNorm")])


@pytest.mark.step6
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5)])
def test_step6_forward_and_running_statistics_match_the_project(shape):
    from tinygrad_yolo.nn import functional as F
    BatchNorm = load("step6_batchnorm").BatchNorm
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(shape) * 2 + 1, rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    stats = [np.zeros(3), np.ones(3)], [np.zeros(3), np.ones(3)]
    ref = F.batch_norm(tg.Tensor(x), *stats[0], tg.Tensor(w), tg.Tensor(b), training=True)
    mine = BatchNorm.apply(tg.Tensor(x), tg.Tensor(w), tg.Tensor(b), running_mean=stats[1][0],
                           running_var=stats[1][1], training=True)
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats[1][0], stats[0][0], rtol=1e-12)   # running mean
    np.testing.assert_allclose(stats[1][1], stats[0][1], rtol=1e-12)   # running (unbiased) variance


# ---- step 7: the residual block ----------------------------------------------------------------
def blocks(m, stride, in_ch, out_ch, residual=True):
    """Your block and the project's, with the same weights (the names match)."""
    from tinygrad_yolo.models import BasicBlock
    tg.seed(stride + in_ch)
    ref = BasicBlock(in_ch, out_ch, stride, residual=residual).double()
    mine = m.BasicBlock(in_ch, out_ch, stride, residual=residual).double()
    mine.load_state_dict(ref.state_dict())
    return mine, ref


@pytest.mark.step7
@pytest.mark.parametrize("stride, in_ch, out_ch, residual",
                         [(1, 3, 3, True), (2, 3, 6, True), (1, 3, 3, False)])
def test_step7_your_block_computes_the_projects_block(stride, in_ch, out_ch, residual):
    mine, ref = blocks(load("step7_residual"), stride, in_ch, out_ch, residual)
    x = np.random.default_rng(2).standard_normal((2, in_ch, 6, 6))
    xm, xr = tg.Tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
    ym, yr = mine(xm), ref(xr)
    np.testing.assert_allclose(ym.numpy(), yr.numpy(), rtol=1e-12, atol=1e-12)
    v = np.random.default_rng(3).standard_normal(ym.shape)
    (ym * v).sum().backward()
    (yr * v).sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xr.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert tg.gradcheck(lambda x: mine(x), [tg.Tensor(x, requires_grad=True)])


@pytest.mark.step7
@pytest.mark.parametrize("stride, out_ch", [(1, 3), (2, 6)])
def test_step7_the_gradient_is_branch_plus_skip(stride, out_ch):
    m = load("step7_residual")
    mine, _ = blocks(m, stride, 3, out_ch)
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 6))
    xt = tg.Tensor(x, requires_grad=True)
    out = mine(xt)
    upstream = np.random.default_rng(5).standard_normal(out.shape)
    (out * upstream).sum().backward()
    branch, skip, dy = m.split_gradient(mine, x, upstream)
    np.testing.assert_allclose(branch + skip, xt.grad.numpy(), rtol=0, atol=1e-12)
    on = out.numpy() > 0  # dL/dy = upstream where the final ReLU is on, 0 where it is off
    assert on.any() and not on.all()
    np.testing.assert_array_equal(dy, upstream * on)
    if stride == 1:
        np.testing.assert_array_equal(skip, dy)  # the identity hands dL/dy over unchanged


@pytest.mark.step7
def test_step7_a_zeroed_branch_makes_the_identity():
    mine, _ = blocks(load("step7_residual"), 1, 3, 3)
    mine.bn2.weight.data[...] = 0.0   # F(x) = 0·x̂ + 0
    x = np.maximum(np.random.default_rng(6).standard_normal((2, 3, 5, 5)), 0)  # a ReLU's output
    np.testing.assert_array_equal(mine(tg.Tensor(x)).numpy(), x)


# ---- step 8: the YOLOv1 loss -------------------------------------------------------------------
@st.composite
def detection_batch(draw):
    """(pred, target, S, B, C): a random target from encode_batch, predictions near it."""
    from tinygrad_yolo.detection import encode_batch
    S, B = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    C, N = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    boxes, labels = [], []
    for _ in range(N):
        k = int(rng.integers(0, 4))
        centre, size = rng.uniform(0.2, 0.8, (k, 2)), rng.uniform(0.05, 0.4, (k, 2))
        boxes.append(np.clip(np.concatenate([centre - size / 2, centre + size / 2], axis=1), 0, 1))
        labels.append(rng.integers(0, C, k))
    target = encode_batch(boxes, labels, S=S, C=C)[0].astype(np.float64)
    pred = rng.standard_normal((N, S, S, B * 5 + C)) * 0.3
    boxes_pred = pred[..., :B * 5].reshape(N, S, S, B, 5)
    true_boxes = np.concatenate([target[..., :2], np.sqrt(target[..., 2:4])], axis=-1)
    boxes_pred[..., :4] += true_boxes[..., None, :]
    return pred, target, S, B, C


@pytest.mark.step8
@given(batch=detection_batch())
def test_step8_assignment_matches_the_project(batch):
    from tinygrad_yolo.detection import YOLOv1Loss
    m = load("step8_yolo_loss")
    pred, target, S, B, C = batch
    responsible, iou = m.assign(pred, target, S, B)
    ref_resp, ref_iou = YOLOv1Loss(S=S, B=B, C=C).assign(pred, target)
    np.testing.assert_allclose(iou, ref_iou, rtol=1e-12, atol=1e-12)
    assert responsible.dtype == bool and responsible.shape == ref_resp.shape
    # one responsible predictor per object cell, the project's (darknet's rule: the IoU where a box
    # overlaps, the RMSE where none does); IoUs within rounding of each other may go either way
    np.testing.assert_array_equal(responsible.sum(axis=-1), (target[..., 4] > 0).astype(int))
    top = np.sort(ref_iou, axis=-1)
    close = (top[..., -1] > 0) & (top[..., -1] - (top[..., -2] if B > 1 else 0) < 1e-9)
    np.testing.assert_array_equal(responsible[~close], ref_resp[~close])


@pytest.mark.step8
def test_step8_no_overlap_the_closest_box_is_responsible():
    """Neither box overlaps the object: the IoUs tie at 0, and the second box, nearer, wins."""
    from tinygrad_yolo.detection import YOLOv1Loss, encode_batch
    m = load("step8_yolo_loss")
    S, B, C = 2, 2, 1
    target, _ = encode_batch([np.array([[0.1, 0.1, 0.3, 0.3]])], [np.array([0])], S=S, C=C)
    target = target.astype(np.float64)
    pred = np.zeros((1, S, S, B * 5 + C))
    pred[0, 0, 0, :5] = [0.95, 0.95, 0.1, 0.1, 0.5]     # far: the opposite corner of the cell
    pred[0, 0, 0, 5:10] = [0.75, 0.75, 0.1, 0.1, 0.5]   # nearer, still no overlap
    responsible, iou = m.assign(pred, target, S, B)
    assert np.all(iou[0, 0, 0] == 0)
    assert responsible[0, 0, 0].tolist() == [False, True]
    assert YOLOv1Loss(S=S, B=B, C=C).assign(pred, target)[0][0, 0, 0].tolist() == [False, True]


@pytest.mark.step8
@given(batch=detection_batch(),
       lambdas=st.sampled_from([(5.0, 0.5, 1.0), (1.0, 1.0, 1.0), (2.0, 0.1, 3.0)]))
def test_step8_loss_matches_the_project_and_gradchecks(batch, lambdas):
    from tinygrad_yolo.detection import YOLOv1Loss
    m = load("step8_yolo_loss")
    pred, target, S, B, C = batch
    loss = YOLOv1Loss(S=S, B=B, C=C, lambda_coord=lambdas[0], lambda_noobj=lambdas[1],
                      lambda_class=lambdas[2])
    # the project's assignment: the same constants for both
    responsible, iou = loss.assign(pred, target)
    total, parts = m.yolo_loss(tg.Tensor(pred), target, responsible, iou, S, B, C, *lambdas)
    ref_total, ref_parts = loss.compute(tg.Tensor(pred), target, responsible, iou)
    assert total.item() == pytest.approx(ref_total.item(), rel=1e-12, abs=1e-12)
    assert parts == pytest.approx(ref_parts, rel=1e-12, abs=1e-12)
    assert tg.gradcheck(lambda p: m.yolo_loss(p, target, responsible, iou, S, B, C, *lambdas)[0],
                        [tg.Tensor(pred, requires_grad=True)])


@pytest.mark.step8
def test_step8_no_box_or_class_gradient_outside_object_cells():
    from tinygrad_yolo.detection import encode_batch
    m = load("step8_yolo_loss")
    S, B, C = 3, 2, 2
    target, _ = encode_batch([np.array([[0.1, 0.1, 0.3, 0.4]])], [np.array([1])], S=S, C=C)
    target = target.astype(np.float64)
    pred = tg.Tensor(np.random.default_rng(7).standard_normal((1, S, S, B * 5 + C)),
                     requires_grad=True)
    responsible, iou = m.assign(pred.numpy(), target, S, B)
    m.yolo_loss(pred, target, responsible, iou, S, B, C)[0].backward()
    g = pred.grad.numpy()
    empty = target[..., 4] == 0
    boxes = g[..., :B * 5].reshape(1, S, S, B, 5)
    assert np.all(boxes[empty][..., :4] == 0) and np.all(g[..., B * 5:][empty] == 0)
    assert np.all(boxes[empty][..., 4] != 0)  # the confidence is pushed to 0 everywhere (λnoobj)


# ---- step 9: your ops train a detector ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """(your model, your losses, the project's model, its losses) after step 9's training."""
    m = load("step9_train")
    mine, mine_losses = m.train(m.Ops.mine())
    project, project_losses = m.train(m.Ops.project())
    return m, mine, mine_losses, project, project_losses


@pytest.mark.step9
def test_step9_your_ops_follow_the_projects_loss_curve(trained):
    m, _, mine, _, project = trained
    assert len(mine) == len(project) == 150
    np.testing.assert_allclose(mine, project, rtol=1e-6,
                               err_msg="your ops' losses (first) against the project's, per step")


@pytest.mark.step9
def test_step9_the_loss_falls(trained):
    _, _, mine, _, _ = trained
    assert np.mean(mine[-10:]) < mine[0] / 20, f"from {mine[0]:.3g} to {np.mean(mine[-10:]):.3g}"


@pytest.mark.step9
def test_step9_the_trained_detector_finds_the_objects_cell(trained):
    m, model, _, _, _ = trained
    images, target, _ = m.toy_batch(200, seed=12345)  # images it never saw
    found = m.found_cells(model, m.Ops.mine(), images, target)
    assert found >= 0.9, f"the object's cell had the highest confidence in {found:.0%} of images"
