"""The YOLOv1 loss: hand-computed values, the responsible-box rule, the
weights, batch averaging, a loop reference for any S, B, C, and gradients."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.detection import YOLOv1Loss, encode_batch


def one_cell_target(cx, cy, w, h, cls, C):
    """S = 1 target: the cell-relative centre equals the image-relative one."""
    target = np.zeros((1, 1, 1, 5 + C))
    target[0, 0, 0, :5] = [cx, cy, w, h, 1]
    target[0, 0, 0, 5 + cls] = 1
    return target


def test_hand_computed_single_cell():
    # S = 1, B = 2, C = 2. Truth: centre (0.5, 0.5), w 0.25, h 0.16 (√: 0.5, 0.4), class 1;
    # as xyxy [0.375, 0.42, 0.625, 0.58], area 0.04.
    target = one_cell_target(0.5, 0.5, 0.25, 0.16, 1, C=2)
    pred = np.array([[[[0.60, 0.5, 0.5, 0.3, 0.7,     # box 0: w 0.25, h 0.09 -> [0.475, 0.455, 0.725, 0.545]
                        0.55, 0.5, 0.3, 0.4, 0.4,     # box 1: w 0.09, h 0.16 -> [0.505, 0.42, 0.595, 0.58]
                        0.2, 0.9]]]])                 # class scores
    # IoU box 0: inter 0.15 * 0.09 = 0.0135, union 0.04 + 0.0225 - 0.0135 = 0.049 -> 0.2755
    # IoU box 1: inside the truth, 0.09 * 0.16 / 0.04 = 0.36 -> box 1 is responsible.
    # coord = 5 * ((0.55 - 0.5)² + 0²)         = 0.0125
    # size  = 5 * ((0.3 - 0.5)² + (0.4 - 0.4)²) = 0.2
    # obj   = (0.4 - 0.36)²                     = 0.0016   (rescore: target = IoU)
    # noobj = 0.5 * 0.7²                        = 0.245    (box 0 is not responsible)
    # class = (0.2 - 0)² + (0.9 - 1)²           = 0.05
    loss = YOLOv1Loss(S=1, B=2, C=2)
    total, parts = loss(tg.Tensor(pred), target)
    expected = {"coord": 0.0125, "size": 0.2, "obj": 0.0016, "noobj": 0.245, "class": 0.05}
    assert parts == pytest.approx(expected, abs=1e-12)
    assert total.item() == pytest.approx(0.5091, abs=1e-12)
    responsible, iou = loss.assign(pred, target)
    assert responsible.tolist() == [[[[False, True]]]]
    np.testing.assert_allclose(iou, [[[[0.0135 / 0.049, 0.36]]]])
    # rescore=False: the confidence target is 1, obj = (0.4 - 1)² = 0.36
    total, parts = YOLOv1Loss(S=1, B=2, C=2, rescore=False)(tg.Tensor(pred), target)
    assert parts["obj"] == pytest.approx(0.36) and total.item() == pytest.approx(0.8675)


def size_loss(true_wh, pred_wh, image=100.0):
    """The size part for one box of true and predicted size in pixels."""
    (tw, th), (pw, ph) = np.array(true_wh) / image, np.array(pred_wh) / image
    target = one_cell_target(0.5, 0.5, tw, th, 0, C=1)
    pred = np.array([[[[0.5, 0.5, np.sqrt(pw), np.sqrt(ph), 1.0, 1.0]]]])
    return YOLOv1Loss(S=1, B=1, C=1)(tg.Tensor(pred), target)[1]["size"]


def test_square_roots_make_small_boxes_count_more():
    # Same absolute error of (2, 3) pixels on a 100-pixel image:
    #   20x30 predicted 18x27: 5 * ((√.20 - √.18)² + (√.30 - √.27)²) = 5 * (0.000527 + 0.000790) = 0.00658
    #    4x6  predicted  2x3:  5 * ((√.04 - √.02)² + (√.06 - √.03)²) = 5 * (0.003431 + 0.005147) = 0.04289
    large, small = size_loss((20, 30), (18, 27)), size_loss((4, 6), (2, 3))
    assert large == pytest.approx(5 * ((np.sqrt(.2) - np.sqrt(.18)) ** 2 + (np.sqrt(.3) - np.sqrt(.27)) ** 2))
    assert small == pytest.approx(5 * ((np.sqrt(.04) - np.sqrt(.02)) ** 2 + (np.sqrt(.06) - np.sqrt(.03)) ** 2))
    assert large == pytest.approx(0.00658, abs=1e-5) and small == pytest.approx(0.04289, abs=1e-5)
    assert small > 6 * large


def test_empty_cells_are_down_weighted_by_lambda_noobj():
    S, B, C = 2, 2, 3
    pred = np.zeros((1, S, S, B * 5 + C))
    pred[..., 4:B * 5:5] = 0.6               # every confidence 0.6, no object anywhere
    target = np.zeros((1, S, S, 5 + C))
    total, parts = YOLOv1Loss(S=S, B=B, C=C)(tg.Tensor(pred), target)
    assert parts["noobj"] == pytest.approx(0.5 * 8 * 0.36)   # 8 predictors, 0.5 * 0.6² each
    assert total.item() == pytest.approx(parts["noobj"])
    assert YOLOv1Loss(S=S, B=B, C=C, lambda_noobj=1.0)(tg.Tensor(pred), target)[1]["noobj"] == pytest.approx(8 * 0.36)


def test_localisation_is_weighted_by_lambda_coord():
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.6, 0.3, 0.5, 0.5, 1.0, 1.0]]]])    # centre off by (0.1, -0.2)
    for lam in (5.0, 1.0):
        parts = YOLOv1Loss(S=1, B=1, C=1, lambda_coord=lam, rescore=False)(tg.Tensor(pred), target)[1]
        assert parts["coord"] == pytest.approx(lam * (0.01 + 0.04))
        assert parts["size"] == 0 and parts["obj"] == 0 and parts["class"] == 0


def test_equal_ious_go_to_the_smaller_coordinate_error():
    # Dyadic numbers keep the two IoUs bit-identical: box 0 predicts √w = -0.5,
    # which decodes to the same box as box 1's √w = 0.5, but is 1.0 away in √w.
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.625, 0.5, -0.5, 0.5, 0.3,
                        0.625, 0.5, 0.5, 0.5, 0.6, 1.0]]]])
    loss = YOLOv1Loss(S=1, B=2, C=1)
    responsible, iou = loss.assign(pred, target)
    assert iou[0, 0, 0, 0] == iou[0, 0, 0, 1] == pytest.approx(1 / 3)
    assert responsible.tolist() == [[[[False, True]]]]


def test_all_zero_ious_go_to_the_smaller_coordinate_error():
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.0, 0.0, 0.1, 0.1, 0.3,     # far away; error .25+.25+.16+.16 = .82
                        1.0, 1.0, 0.2, 0.2, 0.6,     # far away; error .25+.25+.09+.09 = .68
                        1.0]]]])
    responsible, iou = YOLOv1Loss(S=1, B=2, C=1).assign(pred, target)
    assert np.all(iou == 0) and responsible.tolist() == [[[[False, True]]]]


def test_highest_iou_wins_over_smaller_coordinate_error():
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.5, 0.5, 0.6, 0.6, 0.3,      # same centre, bigger: IoU .0625/.1296 = 0.48, error 0.02
                        0.52, 0.5, 0.5, 0.5, 0.6,     # shifted by 0.02: IoU .23*.25/(.125-.0575) = 0.85, error 0.0004
                        0.5, 0.5, 0.5, 0.53, 0.6,     # same centre, taller: IoU .0625/.070225 = 0.89, error 0.0009
                        1.0]]]])
    responsible, iou = YOLOv1Loss(S=1, B=3, C=1).assign(pred, target)
    np.testing.assert_allclose(iou[0, 0, 0], [0.0625 / 0.1296, 0.0575 / 0.0675, 0.0625 / 0.070225])
    assert responsible.tolist() == [[[[False, False, True]]]]


def test_iou_is_computed_in_the_image_frame():
    # S = 2, object in cell (row 1, col 0). The box must be decoded with its cell
    # offset; a perfect prediction has IoU exactly 1 and zero loss.
    target, _ = encode_batch([np.array([[0.1, 0.6, 0.4, 0.9]])], [np.array([0])], S=2, C=1)
    cell = target[0, 1, 0]
    pred = np.zeros((1, 2, 2, 6))
    pred[0, 1, 0] = [cell[0], cell[1], np.sqrt(cell[2]), np.sqrt(cell[3]), 1.0, 1.0]
    loss = YOLOv1Loss(S=2, B=1, C=1)
    _, iou = loss.assign(pred, target)
    assert iou[0, 1, 0, 0] == pytest.approx(1.0, abs=1e-6)
    assert loss(tg.Tensor(pred), target)[0].item() == pytest.approx(0.0, abs=1e-10)


def reference_loss(pred, target, S, B, C, lambda_coord=5.0, lambda_noobj=0.5, rescore=True):
    """The paper's sum written as plain loops over images, cells and boxes."""
    def xyxy(x, y, sw, sh, i, j):
        cx, cy, w, h = (j + x) / S, (i + y) / S, sw * sw, sh * sh
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
        return iw * ih / union if union > 0 else 0.0

    total = 0.0
    for n in range(pred.shape[0]):
        for i in range(S):
            for j in range(S):
                p, t = pred[n, i, j], target[n, i, j]
                boxes = [p[5 * b:5 * b + 5] for b in range(B)]
                if t[4] == 0:
                    total += sum(lambda_noobj * box[4] ** 2 for box in boxes)
                    continue
                true = (t[0], t[1], np.sqrt(t[2]), np.sqrt(t[3]))
                ious = [iou(xyxy(*box[:4], i, j), xyxy(*true, i, j)) for box in boxes]
                errors = [sum((box[k] - true[k]) ** 2 for k in range(4)) for box in boxes]
                best = min(range(B), key=lambda b: (-ious[b], errors[b]))
                for b, box in enumerate(boxes):
                    if b == best:
                        total += lambda_coord * errors[b]
                        total += (box[4] - (ious[b] if rescore else 1.0)) ** 2
                    else:
                        total += lambda_noobj * box[4] ** 2
                total += sum((p[5 * B + c] - t[5 + c]) ** 2 for c in range(C))
    return total / pred.shape[0]


def random_problem(S, B, C, N, seed):
    """Targets with a few objects and predictions scattered around them."""
    rng = np.random.default_rng(seed)
    boxes, labels = [], []
    for _ in range(N):
        centre = rng.uniform(0.1, 0.9, size=(3, 2))
        half = rng.uniform(0.02, 0.1, size=(3, 2))
        boxes.append(np.concatenate([centre - half, centre + half], axis=1))
        labels.append(rng.integers(0, C, size=3))
    target, _ = encode_batch(boxes, labels, S=S, C=C)
    target = target.astype(np.float64)
    pred = rng.normal(0, 0.3, size=(N, S, S, B * 5 + C))
    for b in range(B):  # near the truth in object cells, so IoUs are not all zero
        pred[..., 5 * b:5 * b + 2] += target[..., 0:2]
        pred[..., 5 * b + 2:5 * b + 4] = np.sqrt(target[..., 2:4]) + rng.normal(0, 0.05, size=(N, S, S, 2))
    return pred, target


@pytest.mark.parametrize("S, B, C, rescore", [(7, 2, 20, True), (3, 3, 4, True), (4, 1, 2, False), (2, 4, 1, True)])
def test_matches_loop_reference_for_any_S_B_C(S, B, C, rescore):
    pred, target = random_problem(S, B, C, N=3, seed=S * 100 + B * 10 + C)
    total, parts = YOLOv1Loss(S=S, B=B, C=C, rescore=rescore)(tg.Tensor(pred), target)
    assert total.item() == pytest.approx(reference_loss(pred, target, S, B, C, rescore=rescore), rel=1e-12)
    assert sum(parts.values()) == pytest.approx(total.item(), rel=1e-12)


def test_loss_is_divided_by_batch_size():
    pred, target = random_problem(3, 2, 4, N=1, seed=1)
    loss = YOLOv1Loss(S=3, B=2, C=4)
    one, parts_one = loss(tg.Tensor(pred), target)
    two, parts_two = loss(tg.Tensor(np.concatenate([pred, pred])), tg.Tensor(np.concatenate([target, target])))
    assert two.item() == pytest.approx(one.item(), rel=1e-12)
    assert parts_two == pytest.approx(parts_one, rel=1e-12)


def test_gradcheck_float64():
    S, B, C = 3, 2, 3
    pred, target = random_problem(S, B, C, N=2, seed=7)
    loss = YOLOv1Loss(S=S, B=B, C=C)
    # Hold the assignment and the IoU targets fixed, as the loss does: they are
    # constants, and IoU's own dependence on pred must not enter the numeric gradient.
    responsible, iou = loss.assign(pred, target)
    x = tg.Tensor(pred, requires_grad=True)
    assert tg.gradcheck(lambda p: loss.compute(p, target, responsible, iou)[0], [x])
    # Without rescore nothing depends on the IoU, so the full call checks too
    # (the random predictions are far from IoU ties, so the assignment is stable).
    loss = YOLOv1Loss(S=S, B=B, C=C, rescore=False)
    assert tg.gradcheck(lambda p: loss(p, target)[0], [tg.Tensor(pred, requires_grad=True)])


def test_no_gradient_flows_through_the_iou():
    # One cell, one box: d/dx of the total is only the coordinate term
    # 2 * λcoord * (x - x̂); the rescore target IoU(x) adds nothing.
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = tg.Tensor(np.array([[[[0.55, 0.5, 0.5, 0.5, 0.7, 1.0]]]]), requires_grad=True)
    total, _ = YOLOv1Loss(S=1, B=1, C=1)(pred, target)
    total.backward()
    assert pred.grad.numpy()[0, 0, 0, 0] == pytest.approx(2 * 5.0 * 0.05)
    iou = 0.2 * 0.25 / (2 * 0.0625 - 0.2 * 0.25)
    assert pred.grad.numpy()[0, 0, 0, 4] == pytest.approx(2 * (0.7 - iou))


def test_float32_predictions_keep_their_dtype():
    pred, target = random_problem(3, 2, 4, N=2, seed=3)
    total, _ = YOLOv1Loss(S=3, B=2, C=4)(tg.Tensor(pred.astype(np.float32), requires_grad=True), target)
    assert total.dtype == np.float32
    total.backward()


def test_bad_shapes_raise_clear_errors():
    loss = YOLOv1Loss(S=2, B=2, C=3)
    with pytest.raises(ValueError, match=r"pred must have shape \(N, 2, 2, 13\)"):
        loss(tg.Tensor(np.zeros((1, 2, 2, 12))), np.zeros((1, 2, 2, 8)))
    with pytest.raises(ValueError, match=r"target must have shape \(1, 2, 2, 8\)"):
        loss(tg.Tensor(np.zeros((1, 2, 2, 13))), np.zeros((2, 2, 2, 8)))
    with pytest.raises(ValueError, match="B must be a positive int"):
        YOLOv1Loss(B=0)
