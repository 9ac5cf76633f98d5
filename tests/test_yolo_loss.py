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
    # box 0: w 0.25, h 0.09 -> [0.475, 0.455, 0.725, 0.545]
    # box 1: w 0.09, h 0.16 -> [0.505, 0.42, 0.595, 0.58]
    pred = np.array([[[[0.60, 0.5, 0.5, 0.3, 0.7,     # box 0
                        0.55, 0.5, 0.3, 0.4, 0.4,     # box 1
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
    #   20x30 predicted 18x27: 5 * ((√.20 - √.18)² + (√.30 - √.27)²)
    #                          = 5 * (0.000527 + 0.000790) = 0.00658
    #    4x6  predicted  2x3:  5 * ((√.04 - √.02)² + (√.06 - √.03)²)
    #                          = 5 * (0.003431 + 0.005147) = 0.04289
    large, small = size_loss((20, 30), (18, 27)), size_loss((4, 6), (2, 3))
    r = np.sqrt
    assert large == pytest.approx(5 * ((r(.2) - r(.18)) ** 2 + (r(.3) - r(.27)) ** 2))
    assert small == pytest.approx(5 * ((r(.04) - r(.02)) ** 2 + (r(.06) - r(.03)) ** 2))
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
    _, parts = YOLOv1Loss(S=S, B=B, C=C, lambda_noobj=1.0)(tg.Tensor(pred), target)
    assert parts["noobj"] == pytest.approx(8 * 0.36)


def test_localisation_is_weighted_by_lambda_coord():
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.6, 0.3, 0.5, 0.5, 1.0, 1.0]]]])    # centre off by (0.1, -0.2)
    for lam in (5.0, 1.0):
        loss = YOLOv1Loss(S=1, B=1, C=1, lambda_coord=lam, rescore=False)
        _, parts = loss(tg.Tensor(pred), target)
        assert parts["coord"] == pytest.approx(lam * (0.01 + 0.04))
        assert parts["size"] == 0 and parts["obj"] == 0 and parts["class"] == 0


def test_equal_ious_go_to_the_first_box():
    # Dyadic numbers keep the two IoUs bit-identical: box 0 predicts √w = -0.5, which decodes to
    # the same box as box 1's √w = 0.5. darknet keeps the first (a box must beat best_iou
    # strictly), although box 1 is nearer in √w.
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.625, 0.5, -0.5, 0.5, 0.3,
                        0.625, 0.5, 0.5, 0.5, 0.6, 1.0]]]])
    loss = YOLOv1Loss(S=1, B=2, C=1)
    responsible, iou = loss.assign(pred, target)
    assert iou[0, 0, 0, 0] == iou[0, 0, 0, 1] == pytest.approx(1 / 3)
    assert responsible.tolist() == [[[[True, False]]]]


def object_cell_problem(S, cell_boxes, truth=(0.5, 0.5, 0.04, 0.04)):
    """One image, an object in cell (0, 0) with ``truth`` (x, y cell-relative; w, h), and the
    predictors' (x, y, √w, √h) of that cell."""
    B = len(cell_boxes)
    target = np.zeros((1, S, S, 6))
    target[0, 0, 0, :5] = list(truth) + [1]
    target[0, 0, 0, 5] = 1
    pred = np.zeros((1, S, S, 5 * B + 1))
    for b, box in enumerate(cell_boxes):
        pred[0, 0, 0, 5 * b:5 * b + 4] = box
    return pred, target


def test_without_overlap_the_smallest_rmse_in_image_units_wins():
    # S = 7, truth w = h = 0.04 (√ 0.2). Neither box overlaps it:
    #   box 0: x off by 0.45 cells, size exact.   RMSE = 0.45/7 = 0.064;
    #          (x, y, √w, √h) error 0.2025
    #   box 1: y off by 0.3 cells, √w 0.5 (w 0.25). RMSE = √((0.3/7)² + 0.21²) = 0.214;
    #          error 0.18
    # darknet's RMSE is in image units with w and h squared back, so box 0 wins; a squared error in
    # (x, y, √w, √h) in cell units would have picked box 1.
    pred, target = object_cell_problem(7, [(0.95, 0.5, 0.2, 0.2), (0.5, 0.8, 0.5, 0.2)])
    responsible, iou = YOLOv1Loss(S=7, B=2, C=1).assign(pred, target)
    assert np.all(iou == 0)
    assert responsible[0, 0, 0].tolist() == [True, False]
    delta, _, best = darknet_forward_detection(pred, target, S=7, B=2, C=1)
    assert best[0, 0, 0] == 0


def test_a_later_overlapping_box_beats_an_earlier_box_chosen_by_rmse():
    # box 0 misses the truth by 0.001 (RMSE 0.041), box 1 is centred on it but 25x too wide
    # (IoU 0.04, RMSE 1.36): once an IoU is positive, the RMSE no longer counts.
    near, overlapping = (0.541, 0.5, 0.2, 0.2), (0.5, 0.5, 1.0, 0.2)
    loss = YOLOv1Loss(S=1, B=2, C=1)
    for boxes, winner in (([near, overlapping], 1), ([overlapping, near], 0)):
        pred, target = object_cell_problem(1, boxes)
        responsible, iou = loss.assign(pred, target)
        assert iou[0, 0, 0, 1 - winner] == 0 and iou[0, 0, 0, winner] == pytest.approx(0.04)
        assert responsible[0, 0, 0].tolist() == [b == winner for b in range(2)]


def test_equal_rmse_goes_to_the_first_box():
    # mirror images about the truth, a quarter cell either side: no overlap, bit-identical RMSE
    pred, target = object_cell_problem(1, [(0.75, 0.5, 0.25, 0.25), (0.25, 0.5, 0.25, 0.25)],
                                       truth=(0.5, 0.5, 0.0625, 0.0625))
    responsible, iou = YOLOv1Loss(S=1, B=2, C=1).assign(pred, target)
    assert np.all(iou == 0) and responsible[0, 0, 0].tolist() == [True, False]


def test_every_rmse_above_darknets_start_takes_the_smallest():
    # darknet starts best_rmse at 20: with every RMSE above it, it keeps best_index = -1 (and
    # reads the neighbouring predictor). We take the smallest RMSE instead.
    pred, target = object_cell_problem(1, [(100.0, 0.5, 0.2, 0.2), (50.0, 0.5, 0.2, 0.2)])
    responsible, iou = YOLOv1Loss(S=1, B=2, C=1).assign(pred, target)
    assert np.all(iou == 0) and responsible[0, 0, 0].tolist() == [False, True]


def test_all_zero_ious_go_to_the_smaller_coordinate_error():
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    pred = np.array([[[[0.0, 0.0, 0.1, 0.1, 0.3,     # far away; error .25+.25+.16+.16 = .82
                        1.0, 1.0, 0.2, 0.2, 0.6,     # far away; error .25+.25+.09+.09 = .68
                        1.0]]]])
    responsible, iou = YOLOv1Loss(S=1, B=2, C=1).assign(pred, target)
    assert np.all(iou == 0) and responsible.tolist() == [[[[False, True]]]]


def test_highest_iou_wins_over_smaller_coordinate_error():
    target = one_cell_target(0.5, 0.5, 0.25, 0.25, 0, C=1)
    # box 0, same centre, bigger: IoU .0625/.1296 = 0.48, error 0.02
    # box 1, shifted by 0.02: IoU .23*.25/(.125-.0575) = 0.85, error 0.0004
    # box 2, same centre, taller: IoU .0625/.070225 = 0.89, error 0.0009
    pred = np.array([[[[0.5, 0.5, 0.6, 0.6, 0.3,      # box 0
                        0.52, 0.5, 0.5, 0.5, 0.6,     # box 1
                        0.5, 0.5, 0.5, 0.53, 0.6,     # box 2
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


def darknet_forward_detection(pred, target, S, B, C, coord_scale=5.0, noobject_scale=0.5,
                              rescore=True):
    """forward_detection_layer of darknet's src/detection_layer.c (training, sqrt=1, softmax=0,
    forced=0, object_scale = class_scale = 1), line by line, on our layouts: per cell ours holds
    B boxes of (x, y, √w, √h, conf) and then C classes, darknet's output the classes of all cells,
    then all confidences, then all boxes, and its truth [is_obj, classes, x, y, w, h].

    Returns (delta, cost, best): darknet's delta (same layout as pred), the cost whose gradient for
    one image is -2 * delta (darknet's own l.cost adds (1 - C)² and (1 - IoU)² instead, see
    below), divided by the batch like the delta's SGD step, and the best_index of every cell."""
    def box_iou(a, b):                   # box.c: overlap, box_intersection, box_union, box_iou
        def overlap(x1, w1, x2, w2):
            left = max(x1 - w1 / 2, x2 - w2 / 2)
            right = min(x1 + w1 / 2, x2 + w2 / 2)
            return right - left
        w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
        inter = 0.0 if w < 0 or h < 0 else w * h
        union = a[2] * a[3] + b[2] * b[3] - inter
        return 0.0 if inter == 0 or union == 0 else inter / union

    def box_rmse(a, b):
        return np.sqrt(sum((a[k] - b[k]) ** 2 for k in range(4)))

    N = pred.shape[0]
    delta = np.zeros_like(pred)
    best = np.full(pred.shape[:3], -1)
    cost = 0.0
    for b in range(N):
        for i in range(S * S):                  # locations
            row, col = divmod(i, S)
            out, truth, d = pred[b, row, col], target[b, row, col], delta[b, row, col]
            is_obj = int(truth[4])
            for j in range(B):                  # every predictor first gets the no-object delta
                p_index = 5 * j + 4
                d[p_index] = noobject_scale * (0 - out[p_index])
                cost += noobject_scale * out[p_index] ** 2
            best_index, best_iou, best_rmse = -1, 0.0, 20.0
            if not is_obj:
                continue
            for j in range(C):
                d[5 * B + j] = truth[5 + j] - out[5 * B + j]
                cost += (truth[5 + j] - out[5 * B + j]) ** 2
            # truth.x /= side; truth.y /= side
            tbox = [truth[0] / S, truth[1] / S, truth[2], truth[3]]
            for j in range(B):
                box = [out[5 * j] / S, out[5 * j + 1] / S, out[5 * j + 2], out[5 * j + 3]]
                box[2], box[3] = box[2] * box[2], box[3] * box[3]      # if (l.sqrt)
                iou, rmse = box_iou(box, tbox), box_rmse(box, tbox)
                if best_iou > 0 or iou > 0:
                    if iou > best_iou:
                        best_iou, best_index = iou, j
                else:
                    if rmse < best_rmse:
                        best_rmse, best_index = rmse, j
            assert best_index >= 0, "every RMSE >= 20: darknet would read outside the cell"
            box_index, p_index = 5 * best_index, 5 * best_index + 4
            box = [out[box_index] / S, out[box_index + 1] / S, out[box_index + 2] ** 2,
                   out[box_index + 3] ** 2]
            iou = box_iou(box, tbox)
            cost -= noobject_scale * out[p_index] ** 2
            d[p_index] = 1.0 - out[p_index]
            if rescore:
                d[p_index] = iou - out[p_index]
            cost += d[p_index] ** 2             # darknet: += (1 - out)², even with rescore
            for k in range(4):
                t = np.sqrt(truth[k]) if k >= 2 else truth[k]          # sqrt=1: √w and √h targets
                d[box_index + k] = coord_scale * (t - out[box_index + k])
                cost += coord_scale * (t - out[box_index + k]) ** 2
            # (darknet also adds (1 - iou)² to its printed cost here; nothing follows from it)
            best[b, row, col] = best_index
    return delta, cost / N, best


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
        noise = rng.normal(0, 0.05, size=(N, S, S, 2))
        pred[..., 5 * b + 2:5 * b + 4] = np.sqrt(target[..., 2:4]) + noise
    return pred, target


def no_overlap_problem(S, B, C, N, seed):
    """Targets from random_problem, and predictors none of which overlaps its cell's object: the
    cells where darknet decides by RMSE alone (most cells early in training)."""
    rng = np.random.default_rng(seed)
    _, target = random_problem(S, B, C, N, seed)
    pred = rng.normal(0, 0.3, size=(N, S, S, B * 5 + C))
    for n, i, j in zip(*np.nonzero(target[..., 4])):
        t = target[n, i, j]
        for b in range(B):
            while True:  # redraw until this box misses the truth
                x, y = rng.uniform(0, 1, 2)
                sw, sh = rng.uniform(0.05, 0.6, 2)
                apart_x = abs(x - t[0]) / S > (sw * sw + t[2]) / 2
                if apart_x or abs(y - t[1]) / S > (sh * sh + t[3]) / 2:
                    break
            pred[n, i, j, 5 * b:5 * b + 4] = x, y, sw, sh
    return pred, target


def check_against_darknet(pred, target, S, B, C, rescore):
    loss = YOLOv1Loss(S=S, B=B, C=C, rescore=rescore)
    x = tg.Tensor(pred, requires_grad=True)
    total, parts = loss(x, target)
    total.backward()
    delta, cost, best = darknet_forward_detection(pred, target, S, B, C, rescore=rescore)
    responsible, iou = loss.assign(pred, target)
    has_object = target[..., 4] > 0
    np.testing.assert_array_equal(np.argmax(responsible, axis=-1)[has_object], best[has_object])
    assert not responsible[~has_object].any()
    assert total.item() == pytest.approx(cost, rel=1e-12)
    assert sum(parts.values()) == pytest.approx(total.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), -2 * delta / pred.shape[0], rtol=1e-12, atol=1e-15)
    return iou, has_object


@pytest.mark.parametrize("S, B, C, rescore",
                         [(7, 2, 20, True), (7, 3, 20, True), (3, 3, 4, False), (2, 4, 1, True)])
def test_matches_darknet_where_no_box_overlaps(S, B, C, rescore):
    pred, target = no_overlap_problem(S, B, C, N=6, seed=S * 100 + B * 10 + C)
    iou, has_object = check_against_darknet(pred, target, S, B, C, rescore)
    assert has_object.sum() >= 4 and np.all(iou[has_object] == 0)
    # These cells discriminate: a squared error in (x, y, √w, √h) in cell units picks another
    # box in some
    boxes = pred[..., :5 * B].reshape(pred.shape[:3] + (B, 5))[..., :4]
    true = np.concatenate([target[..., 0:2], np.sqrt(target[..., 2:4])], axis=-1)[..., None, :]
    old_rule = np.argmin(((boxes - true) ** 2).sum(axis=-1), axis=-1)
    darknet = darknet_forward_detection(pred, target, S, B, C)[2]
    assert np.any(old_rule[has_object] != darknet[has_object])


@pytest.mark.parametrize("S, B, C, rescore",
                         [(7, 2, 20, True), (3, 3, 4, True), (4, 1, 2, False), (2, 4, 1, True)])
def test_matches_darknet_with_overlapping_boxes(S, B, C, rescore):
    pred, target = random_problem(S, B, C, N=3, seed=S * 100 + B * 10 + C)
    # push one predictor of every other object cell off its object, so cells mix overlapping and
    # non-overlapping boxes (where a later overlapping box must beat an earlier one chosen by RMSE)
    for k, (n, i, j) in enumerate(zip(*np.nonzero(target[..., 4]))):
        if k % 2 == 0:
            pred[n, i, j, 0] += 3.0
    iou, has_object = check_against_darknet(pred, target, S, B, C, rescore)
    assert np.any(iou[has_object].max(axis=-1) > 0)
    if B > 1:
        assert np.any((iou[has_object] == 0).any(axis=-1) & (iou[has_object] > 0).any(axis=-1))


def test_loss_is_divided_by_batch_size():
    pred, target = random_problem(3, 2, 4, N=1, seed=1)
    loss = YOLOv1Loss(S=3, B=2, C=4)
    one, parts_one = loss(tg.Tensor(pred), target)
    two, parts_two = loss(tg.Tensor(np.concatenate([pred, pred])),
                          tg.Tensor(np.concatenate([target, target])))
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
    x = tg.Tensor(pred.astype(np.float32), requires_grad=True)
    total, _ = YOLOv1Loss(S=3, B=2, C=4)(x, target)
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
