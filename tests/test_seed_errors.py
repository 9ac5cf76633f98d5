"""The evidence behind docs/seed-errors.md: each mistake of the documents this project started
from, checked on the project's own code (the page names the test beside each claim)."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.detection import YOLOv1Loss, decode, encode_targets
from tinygrad_yolo.models import BasicBlock
from tinygrad_yolo.nn import functional as F


# 1. x, y are the box centre (an offset from the cell's top-left corner), not its top-left corner
def test_x_y_are_the_centre_within_the_cell():
    box = np.array([[0.30, 0.50, 0.50, 0.90]])       # centre (0.40, 0.70), 0.2 x 0.4
    target, _ = encode_targets(box, [3], S=7, C=20)
    i, j = np.argwhere(target[..., 4] == 1)[0]
    # the cell holding the centre: floor(0.7*7), floor(0.4*7)
    assert (i, j) == (4, 2)
    np.testing.assert_allclose(target[i, j, :2], [0.40 * 7 - 2, 0.70 * 7 - 4], atol=1e-6)
    # a prediction equal to the target decodes back to the box: its centre is (j + x) / S,
    # (i + y) / S
    out = np.zeros((7, 7, 30))
    out[i, j, :4] = [*target[i, j, :2], *np.sqrt(target[i, j, 2:4])]
    out[i, j, 4], out[i, j, 10 + 3] = 1.0, 1.0
    np.testing.assert_allclose(decode(out, conf_threshold=0.5)[0, :4], box[0], atol=1e-6)


# 2. two boxes per cell: 2 x 5 + 20 = 30 numbers, not 2 x 15
@pytest.mark.parametrize("B, C", [(2, 20), (3, 5)])
def test_a_cell_holds_B_boxes_of_5_and_one_set_of_C_class_scores(B, C):
    tg.seed(0)
    model = tg.models.YOLOv1(backbone="resnet18", S=2, B=B, C=C, img_size=64, width=0.125)
    model.eval()
    with tg.no_grad():
        out = model(tg.Tensor(np.zeros((1, 3, 64, 64), dtype=np.float32)))
    # B * 5 + C: the class scores are the cell's, not each box's
    assert out.shape == (1, 2, 2, B * 5 + C)


# 3. the confidence target is the IoU of the predicted box with the truth, not 1
def test_the_confidence_target_is_the_iou():
    target = np.zeros((1, 1, 1, 6))
    target[0, 0, 0] = [0.5, 0.5, 0.25, 0.16, 1, 1]                   # one box, C = 1
    pred = np.array([[[[0.5, 0.5, 0.5, 0.3, 0.0, 1.0]]]])  # right centre and width, too short
    loss = YOLOv1Loss(S=1, B=1, C=1)
    _, iou = loss.assign(pred, target)
    assert 0 < iou[0, 0, 0, 0] < 1
    pred[..., 4] = iou[0, 0, 0, 0]                         # confidence = the IoU: no obj loss
    assert loss(tg.Tensor(pred), target)[1]["obj"] == pytest.approx(0.0, abs=1e-15)
    pred[..., 4] = 1.0                                              # confidence 1 is penalised
    assert loss(tg.Tensor(pred), target)[1]["obj"] == pytest.approx((1 - iou[0, 0, 0, 0]) ** 2)


# 4. B = 2 does not let a cell detect two objects
def test_one_object_and_one_class_per_cell():
    # both centres in cell (0, 0) at S = 7
    boxes = np.array([[0.02, 0.02, 0.20, 0.20], [0.05, 0.00, 0.15, 0.20]])
    target, dropped = encode_targets(boxes, [2, 5], S=7, C=20)
    assert dropped == 1 and target[..., 4].sum() == 1              # the target keeps one of them
    assert target[0, 0, 5:].argmax() == 2                           # (the larger box, class 2)
    # and the output has one set of class scores per cell: both predictors get the same class
    out = np.zeros((7, 7, 30))
    out[0, 0, :10] = [0.75, 0.75, 0.45, 0.45, 1.0,  # two different boxes
                      0.75, 0.75, 0.3, 0.55, 1.0]
    out[0, 0, 10 + 2], out[0, 0, 10 + 5] = 0.9, 0.8
    best_per_box = {}
    for x1, y1, x2, y2, score, cls in decode(out, conf_threshold=0.5):
        key = (round(x1, 4), round(y1, 4))
        best_per_box.setdefault(key, (score, cls))
    assert len(best_per_box) == 2 and {cls for _, cls in best_per_box.values()} == {2.0}


# 5. sqrt(w), sqrt(h) only partly even out box sizes
def size_part(true_wh, pred_wh):
    tw, th = np.array(true_wh) / 100
    pw, ph = np.array(pred_wh) / 100
    target = np.array([[[[0.5, 0.5, tw, th, 1, 1]]]])
    pred = np.array([[[[0.5, 0.5, np.sqrt(pw), np.sqrt(ph), 1.0, 1.0]]]])
    return YOLOv1Loss(S=1, B=1, C=1)(tg.Tensor(pred), target)[1]["size"]


def test_at_the_same_relative_error_the_big_box_still_costs_more():
    big, small = size_part((20, 30), (18, 27)), size_part((4, 6), (3.6, 5.4))   # both 10% off
    # the size ratio (without the sqrt: 25, the area ratio)
    assert big / small == pytest.approx(5.0, rel=1e-9)


# 6. with batch norm a deep plain net's gradient does not vanish (He et al. 2016, section 4.1)
def test_a_deep_plain_net_with_batch_norm_keeps_its_gradient():
    tg.seed(0)
    net = tg.models.plain56(num_classes=10, width=0.25)
    x = tg.Tensor(np.random.default_rng(0).standard_normal((8, 3, 8, 8)).astype(np.float32),
                  requires_grad=True)
    norms = []
    for stage in (net.layer1, net.layer3):  # the gradient at the first and the last stage's input
        stage.register_forward_hook(
            lambda m, inputs, out: inputs[0].retain_grad() or norms.append(inputs[0]))
    F.cross_entropy(net(x), np.arange(8) % 10).backward()
    first, last = (float(np.linalg.norm(t.grad.numpy())) for t in norms)
    assert first > last > 0  # towards the input it grows: exploding, not vanishing


# 7. the ReLU after the addition gates the "pure" skip gradient
def skip_part(block, x, upstream, post_activation=True):
    xb, xs = tg.Tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
    f = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(xb)))))
    y = f + xs
    out = block.relu(y) if post_activation else y
    (out * tg.Tensor(upstream)).sum().backward()
    return xs.grad.numpy(), y.numpy()


def test_the_post_addition_relu_gates_the_skip_gradient():
    tg.seed(1)
    block = BasicBlock(2, 2).double()
    rng = np.random.default_rng(1)
    x, upstream = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 4))
    skip, y = skip_part(block, x, upstream)
    np.testing.assert_array_equal(skip, upstream * (y > 0))  # zero wherever relu(F(x) + x) is off
    assert (y <= 0).any()
    # without a ReLU after the addition (the pre-activation ordering) it is the identity's, intact
    skip, _ = skip_part(block, x, upstream, post_activation=False)
    np.testing.assert_array_equal(skip, upstream)


# 8. zeroing a block's conv weights under batch norm still leaves beta
def test_zeroed_conv_weights_leave_the_batch_norm_shift():
    tg.seed(2)
    block = BasicBlock(2, 2).double()
    block.conv2.weight.data[...] = 0.0
    block.bn2.bias.data[...] = 0.3                  # any trained shift
    x = np.maximum(np.random.default_rng(2).standard_normal((2, 2, 4, 4)), 0)
    with tg.no_grad():
        out = block(tg.Tensor(x)).numpy()
    np.testing.assert_allclose(out, x + 0.3)        # F(x) = BN(0) = beta, not 0: not the identity
    block.bn2.weight.data[...] = 0.0                # zero_init_residual's way: gamma = 0 ...
    block.bn2.bias.data[...] = 0.0                  # ... and beta = 0, as at init
    weights = np.random.default_rng(3).standard_normal(block.conv2.weight.shape)
    block.conv2.weight.data[...] = weights
    with tg.no_grad():
        np.testing.assert_array_equal(block(tg.Tensor(x)).numpy(), x)
