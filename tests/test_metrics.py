"""VOC AP / mAP: hand-computed curves, the difficult rule, duplicates, and a
straightforward loop that restates the devkit's voc_eval rule, as a reference."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_yolo.detection import average_precision, mean_average_precision


def det(box, score, cls):
    return [*box, score, cls]


def test_perfect_detections_give_one():
    gts = [np.array([[0.1, 0.1, 0.4, 0.5, 0], [0.5, 0.5, 0.9, 0.8, 1]]),
           np.array([[0.2, 0.3, 0.6, 0.9, 1]])]
    dets = [np.array([det(g[:4], 0.9, g[4]) for g in image]) for image in gts]
    for method in ("all-point", "11-point"):
        out = mean_average_precision(dets, gts, num_classes=2, method=method)
        assert out["map"] == pytest.approx(1.0)
        np.testing.assert_allclose(out["ap"], [1.0, 1.0])


# Class 0 in two images: ground truths A, B (image 0) and G (image 1).
A, B, G = [0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7], [0.1, 0.1, 0.4, 0.4]
NOWHERE = [0.8, 0.0, 1.0, 0.1]
HAND_GTS = [np.array([A + [0], B + [0]]), np.array([G + [0]])]
HAND_DETS = [np.array([det(A, 0.9, 0), det(NOWHERE, 0.8, 0), det(A, 0.6, 0)]),
             np.array([det(G, 0.7, 0), det(NOWHERE, 0.5, 0)])]
# By score: 0.9 TP (A), 0.8 FP, 0.7 TP (G), 0.6 FP (duplicate of A), 0.5 FP; B is never found.
#   recall    1/3  1/3  2/3  2/3  2/3
#   precision 1    1/2  2/3  1/2  2/5
# all-point: envelope 1 up to recall 1/3, 2/3 up to recall 2/3, then 0
#   AP = 1/3 * 1 + 1/3 * 2/3 = 5/9
# 11-point: r = 0, .1, .2, .3 -> 1; r = .4, .5, .6 -> 2/3; r = .7 ... 1 -> 0
#   AP = (4 * 1 + 3 * 2/3) / 11 = 6/11


def test_hand_computed_pr_curve_all_point():
    out = mean_average_precision(HAND_DETS, HAND_GTS, num_classes=1, method="all-point")
    assert out["map"] == pytest.approx(5 / 9)


def test_hand_computed_pr_curve_11_point():
    out = mean_average_precision(HAND_DETS, HAND_GTS, num_classes=1, method="11-point")
    assert out["map"] == pytest.approx(6 / 11)


def test_average_precision_directly():
    rec, prec = np.array([1, 1, 2, 2, 2]) / 3, np.array([1, 1 / 2, 2 / 3, 1 / 2, 2 / 5])
    assert average_precision(rec, prec, "all-point") == pytest.approx(5 / 9)
    assert average_precision(rec, prec, "11-point") == pytest.approx(6 / 11)
    # A recall of exactly 3/10 must count for the r = 0.3 point.
    assert average_precision(np.array([0.3]), np.array([1.0]), "11-point") == pytest.approx(4 / 11)


def test_detection_of_a_difficult_object_is_ignored():
    gts = [np.array([[0.0, 0.0, 0.5, 0.5, 0], [0.5, 0.5, 1.0, 1.0, 0]])]
    dets = [np.array([det([0.5, 0.5, 1.0, 1.0], 0.9, 0),    # hits only the difficult object
                      det([0.0, 0.0, 0.5, 0.5], 0.8, 0)])]  # hits the normal one
    out = mean_average_precision(dets, gts, 1, difficult=[np.array([False, True])])
    assert out["map"] == pytest.approx(1.0)  # were it an FP, precision at the TP would be 1/2
    # Without the flag it is an ordinary object: both TPs, recall over 2 objects.
    assert mean_average_precision(dets, gts, 1)["map"] == pytest.approx(1.0)
    # Without the flag and without its detection, recall stops at 1/2.
    assert mean_average_precision([dets[0][1:]], gts, 1)["map"] == pytest.approx(0.5)
    # With the flag and without its detection, the difficult object is not missed.
    result = mean_average_precision([dets[0][1:]], gts, 1, difficult=[[0, 1]])
    assert result["map"] == pytest.approx(1.0)


def test_duplicate_detection_is_a_false_positive():
    gts = [np.array([[0.0, 0.0, 0.5, 0.5, 0], [0.5, 0.5, 1.0, 1.0, 0]])]
    dets = [np.array([det([0.0, 0.0, 0.5, 0.5], 0.9, 0), det([0.0, 0.0, 0.5, 0.48], 0.8, 0),
                      det([0.5, 0.5, 1.0, 1.0], 0.7, 0)])]
    # TP, FP, TP: recall 1/2 1/2 1, precision 1 1/2 2/3 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert mean_average_precision(dets, gts, 1)["map"] == pytest.approx(5 / 6)


def test_iou_threshold_is_inclusive():
    gts = [np.array([[0.0, 0.0, 1.0, 1.0, 0]])]
    half = [np.array([det([0.0, 0.0, 0.5, 1.0], 0.9, 0)])]  # IoU exactly 0.5
    assert mean_average_precision(half, gts, 1, iou_threshold=0.5)["map"] == pytest.approx(1.0)
    assert mean_average_precision(half, gts, 1, iou_threshold=0.51)["map"] == 0.0


def test_detections_in_images_without_ground_truth_are_false_positives():
    gts = [np.array([[0.1, 0.1, 0.3, 0.3, 0]]), np.zeros((0, 5))]
    dets = [np.array([det([0.1, 0.1, 0.3, 0.3], 0.8, 0)]),
            np.array([det([0.1, 0.1, 0.3, 0.3], 0.95, 0)])]
    # FP then TP: recall 0, 1; precision 0, 1/2 -> AP = 1 * 1/2
    assert mean_average_precision(dets, gts, 1)["map"] == pytest.approx(0.5)


def test_class_without_ground_truth_is_left_out_of_the_mean():
    gts = [np.array([[0.1, 0.1, 0.3, 0.3, 0], [0.5, 0.5, 0.9, 0.9, 2]])]
    dets = [np.array([det([0.1, 0.1, 0.3, 0.3], 0.8, 0), det([0.5, 0.5, 0.9, 0.9], 0.9, 1)])]
    out = mean_average_precision(dets, gts, num_classes=3)
    # class 0: AP 1; class 1: no object, NaN, left out; class 2: never detected, AP 0.
    assert np.isnan(out["ap"][1])
    np.testing.assert_allclose(out["ap"][[0, 2]], [1.0, 0.0])
    assert out["map"] == pytest.approx(0.5)
    # A class whose only objects are difficult has no positives either.
    out = mean_average_precision(dets, gts, 3, difficult=[np.array([False, True])])
    assert np.isnan(out["ap"][2]) and out["map"] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(detections=[np.zeros((1, 5))], ground_truths=[np.zeros((0, 5))]),
     r"detections of image 0 .*\(K, 6\)"),
    (dict(detections=[[]], ground_truths=[np.zeros((1, 4))]),
     r"ground truths of image 0 .*\(M, 5\)"),
    (dict(detections=[[], []], ground_truths=[[]]),
     "detections for 2 images but ground truths for 1"),
    (dict(detections=[[[0, 0, 1, 1, 0.5, 3]]], ground_truths=[[]]), r"class ids outside \[0, 3\)"),
    (dict(detections=[[]], ground_truths=[[[0, 0, 1, 1, 1.5]]]), "non-integer class ids"),
    (dict(detections=[[]], ground_truths=[[[0, 0, 1, 1, 1]]], difficult=[[True, False]]),
     r"shape \(1,\)"),
    (dict(detections=[[]], ground_truths=[[]], method="trapezoid"), "method must be"),
])
def test_bad_inputs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mean_average_precision(num_classes=3, **kwargs)


def devkit_voc_eval(detections, ground_truths, difficult, c, threshold, use_07_metric):
    """The devkit's evaluation rule for one class, restated as a plain loop (written for
    this test, following the devkit's steps), minus the +1 pixel and with ovmax >= threshold.
    It keeps ignored (difficult) detections as rows with tp = fp = 0, where
    mean_average_precision drops them."""
    class_recs, npos = {}, 0
    for n, (g, d) in enumerate(zip(ground_truths, difficult)):
        R = g[:, 4] == c
        class_recs[n] = {"bbox": g[R, :4], "difficult": d[R], "det": [False] * int(R.sum())}
        npos += int(np.sum(~d[R]))
    image_ids = [n for n, d in enumerate(detections) for row in d if row[5] == c]
    confidence = np.array([row[4] for d in detections for row in d if row[5] == c])
    BB = np.array([row[:4] for d in detections for row in d if row[5] == c]).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence, kind="stable")
    BB, image_ids = BB[sorted_ind], [image_ids[x] for x in sorted_ind]
    tp, fp = np.zeros(len(image_ids)), np.zeros(len(image_ids))
    for d in range(len(image_ids)):
        R, bb, ovmax = class_recs[image_ids[d]], BB[d], -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            iw = np.maximum(np.minimum(BBGT[:, 2], bb[2]) - np.maximum(BBGT[:, 0], bb[0]), 0.)
            ih = np.maximum(np.minimum(BBGT[:, 3], bb[3]) - np.maximum(BBGT[:, 1], bb[1]), 0.)
            inters = iw * ih
            uni = ((bb[2] - bb[0]) * (bb[3] - bb[1])
                   + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters)
            overlaps = np.where(uni > 0, inters / np.where(uni > 0, uni, 1), 0)
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax >= threshold:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d], R["det"][jmax] = 1., True
                else:
                    fp[d] = 1.
        else:
            fp[d] = 1.
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / npos
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07_metric:
        return np.mean([np.max(prec[rec >= t]) if np.sum(rec >= t) else 0
                        for t in np.arange(11) / 10])
    mrec, mpre = np.concatenate(([0.], rec, [1.])), np.concatenate(([0.], prec, [0.]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


# Coordinates on a coarse grid so that boxes coincide and overlap often.
_coord = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
_image = st.tuples(
    hnp.arrays(np.float64, st.tuples(st.integers(0, 4), st.just(6)), elements=_coord),
    hnp.arrays(np.float64, st.tuples(st.integers(0, 3), st.just(5)), elements=_coord))


def _tidy(dets, gts, rng):
    """Valid corners, random scores/classes/difficult flags, and extra detections
    copied from ground truths so that matches, duplicates and difficult hits are common."""
    gts = np.concatenate([np.minimum(gts[:, :2], gts[:, 2:4]), np.maximum(gts[:, :2], gts[:, 2:4]),
                          rng.integers(0, 2, (len(gts), 1))], 1)
    copies = gts[rng.integers(0, len(gts), rng.integers(1, 6))] if len(gts) else np.zeros((0, 5))
    boxes = np.concatenate([np.minimum(dets[:, :2], dets[:, 2:4]),
                            np.maximum(dets[:, :2], dets[:, 2:4])], 1)
    boxes = np.concatenate([boxes, copies[:, :4]])
    classes = np.concatenate([rng.integers(0, 2, len(dets)), copies[:, 4]])
    scores = rng.choice([0.2, 0.4, 0.6], size=(len(boxes), 1))
    dets = np.concatenate([boxes, scores, classes[:, None]], 1)
    return dets, gts, rng.random(len(gts)) < 0.3


@given(st.lists(_image, min_size=1, max_size=4), st.integers(0, 2 ** 16),
       st.sampled_from(["all-point", "11-point"]), st.sampled_from([0.3, 0.5]))
def test_matches_devkit_port(images, seed, method, threshold):
    rng = np.random.default_rng(seed)
    dets, gts, difficult = zip(*[_tidy(d, g, rng) for d, g in images])
    out = mean_average_precision(dets, gts, 2, iou_threshold=threshold, method=method,
                                 difficult=difficult)
    for c in range(2):
        if sum(int(np.sum(~d[g[:, 4] == c])) for g, d in zip(gts, difficult)) == 0:
            assert np.isnan(out["ap"][c])
        else:
            expected = devkit_voc_eval(dets, gts, difficult, c, threshold, method == "11-point")
            assert out["ap"][c] == pytest.approx(expected, abs=1e-12)
