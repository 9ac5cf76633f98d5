"""Decoding the output grid, NMS and per-class NMS."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_yolo.detection import batched_nms, decode, encode_targets, nms, postprocess


def perfect_output(target, B):
    """The output a perfect network would give for ``target``: in object cells
    every predictor says (x, y, sqrt w, sqrt h, conf=1) and the class scores
    are the one-hot vector; empty cells are all zeros."""
    S, C = target.shape[0], target.shape[-1] - 5
    out = np.zeros((S, S, B * 5 + C))
    box = np.concatenate([target[..., :2], np.sqrt(target[..., 2:4]), target[..., 4:5]], axis=-1)
    out[..., :B * 5] = np.tile(box, B)
    out[..., B * 5:] = target[..., 5:]
    return out


def test_encode_then_decode_gives_back_the_boxes():
    boxes = np.array([[0.1, 0.2, 0.3, 0.5], [0.55, 0.6, 0.95, 0.9], [0.4, 0.0, 0.7, 0.25]])
    labels = np.array([2, 0, 1])
    target, dropped = encode_targets(boxes, labels, S=5, C=3)
    assert dropped == 0
    det = decode(perfect_output(target, B=1), conf_threshold=0.5, S=5, B=1, C=3)
    assert det.shape == (3, 6)
    det = det[np.argsort(det[:, 5])]  # one detection per class here: order by class
    np.testing.assert_allclose(det[:, :4], boxes[np.argsort(labels)], atol=1e-6)
    np.testing.assert_allclose(det[:, 4], 1.0)
    np.testing.assert_array_equal(det[:, 5], np.sort(labels))


@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 4), st.data())
def test_encode_decode_round_trip_random(S, B, C, data):
    # One box per cell in a random subset of cells, so none is dropped.
    cell = st.tuples(st.integers(0, S - 1), st.integers(0, S - 1))
    cells = data.draw(st.lists(cell, unique=True, max_size=4))
    frac = st.floats(0.0, 0.999, allow_nan=False)
    boxes, labels = [], []
    for i, j in cells:
        cx, cy = (j + data.draw(frac)) / S, (i + data.draw(frac)) / S
        half_w = data.draw(st.floats(0, 1)) * min(cx, 1 - cx)   # stays inside the image,
        half_h = data.draw(st.floats(0, 1)) * min(cy, 1 - cy)   # so clipping changes nothing
        boxes.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
        labels.append(data.draw(st.integers(0, C - 1)))
    boxes, labels = np.array(boxes).reshape(-1, 4), np.array(labels, dtype=int)
    target, dropped = encode_targets(boxes, labels, S=S, C=C)
    assert dropped == 0
    batch = perfect_output(target, B)[None].repeat(2, axis=0)
    for det in decode(batch, conf_threshold=0.5, S=S, B=B, C=C):
        assert det.shape == (len(boxes) * B, 6)  # each of the B predictors gives the same box
        np.testing.assert_allclose(det[:, 4], 1.0)
        for b, c in zip(boxes, labels):
            same = np.all(np.abs(det[:, :4] - b) < 1e-5, axis=1) & (det[:, 5] == c)
            assert same.sum() >= B


def test_scores_are_class_probability_times_confidence():
    S, B, C = 2, 2, 3
    out = np.zeros((S, S, B * 5 + C))
    out[0, 1, :5] = [0.5, 0.5, 0.4, 0.2, 0.8]      # box 0: centre (0.75, 0.25), w 0.16, h 0.04
    out[0, 1, 5:10] = [0.5, 0.5, 0.4, 0.2, -0.5]   # box 1: negative conf -> clipped to 0
    out[0, 1, 10:] = [0.5, -0.2, 0.9]              # negative class score -> clipped to 0
    det = decode(out, conf_threshold=0.3, S=S, B=B, C=C)
    # 0.8 * 0.9 = 0.72 (class 2), 0.8 * 0.5 = 0.4 (class 0), sorted by score.
    np.testing.assert_allclose(det, [[0.67, 0.23, 0.83, 0.27, 0.72, 2],
                                     [0.67, 0.23, 0.83, 0.27, 0.40, 0]], atol=1e-6)
    assert decode(out, conf_threshold=0.8, S=S, B=B, C=C).shape == (0, 6)


def test_decoded_boxes_are_clipped_to_the_image():
    out = np.zeros((1, 1, 6))
    out[0, 0] = [0.5, 0.5, 1.2, 0.5, 1.0, 1.0]   # w = 1.44 around centre 0.5
    np.testing.assert_allclose(decode(out, S=1, B=1, C=1), [[0, 0.375, 1, 0.625, 1, 0]])


def test_decode_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"expected output of shape \(N, 7, 7, 30\)"):
        decode(np.zeros((2, 7, 7, 25)))


def _scalar_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def brute_force_nms(boxes, scores, threshold):
    """Keep a box unless a better, already kept box overlaps it by more than threshold."""
    keep = []
    for k in sorted(range(len(scores)), key=lambda k: -scores[k]):  # sorted() is stable
        if all(_scalar_iou(boxes[k], boxes[m]) <= threshold for m in keep):
            keep.append(k)
    return keep


def _valid_boxes(raw):
    return np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]), np.maximum(raw[:, :2], raw[:, 2:])],
                          axis=1)


_detections = st.integers(0, 12).flatmap(lambda k: st.tuples(
    hnp.arrays(np.float64, (k, 4), elements=st.floats(0, 1)),
    # A few distinct score values so ties happen and the stable order is tested.
    hnp.arrays(np.float64, (k,), elements=st.sampled_from([0.1, 0.5, 0.7, 0.9])),
    hnp.arrays(np.int64, (k,), elements=st.integers(0, 2))))


@given(_detections, st.sampled_from([0.0, 0.3, 0.5, 0.9]))
def test_nms_matches_brute_force(dets, threshold):
    raw, scores, _ = dets
    boxes = _valid_boxes(raw)
    assert nms(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


@given(_detections, st.sampled_from([0.3, 0.5]))
def test_batched_nms_matches_per_class_brute_force(dets, threshold):
    raw, scores, classes = dets
    boxes = _valid_boxes(raw)
    expected = []
    for c in np.unique(classes):
        idx = np.nonzero(classes == c)[0]
        expected += [idx[k] for k in brute_force_nms(boxes[idx], scores[idx], threshold)]
    expected = sorted(expected, key=lambda k: (-scores[k], k))
    assert batched_nms(boxes, scores, classes, threshold).tolist() == expected


def test_nms_hand_case():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.9], [0, 0, 0.5, 0.5], [0.1, 0, 1, 1]])
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # Box 3 scores best. IoU with it: box 0 0.9/1.0 = 0.9, box 1 0.81/0.99 = 0.82,
    # box 2 0.2/0.95 = 0.21; boxes 0 and 1 overlap each other by 0.9.
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]])
    kept = batched_nms(boxes, np.array([0.5, 0.9, 0.7]), np.array([0, 1, 0]), 0.5)
    assert kept.tolist() == [1, 2]


def test_postprocess_removes_duplicates_and_caps_count():
    S, B, C = 2, 2, 2
    out = np.zeros((1, S, S, B * 5 + C))
    out[0, 0, 0, :10] = [0.5, 0.5, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.5, 0.6]  # two copies of one box
    out[0, 0, 0, 10:] = [1.0, 0.0]
    out[0, 1, 1, :5] = [0.5, 0.5, 0.3, 0.3, 0.8]
    out[0, 1, 1, 10:] = [0.0, 1.0]
    det = postprocess(out, S=S, B=B, C=C, conf_threshold=0.1, iou_threshold=0.5)[0]
    np.testing.assert_allclose(det[:, 4:], [[0.9, 0], [0.8, 1]], atol=1e-6)
    assert len(postprocess(out, S=S, B=B, C=C, conf_threshold=0.1, max_detections=1)[0]) == 1


def test_decode_accepts_a_tensor():
    import tinygrad_yolo as tg
    out = np.zeros((1, 1, 1, 6))
    out[0, 0, 0] = [0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
    np.testing.assert_allclose(decode(tg.Tensor(out), S=1, B=1, C=1)[0],
                               [[0.375, 0.375, 0.625, 0.625, 1, 0]])
