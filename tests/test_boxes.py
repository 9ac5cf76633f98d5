"""Box format conversions and pairwise IoU."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_yolo.detection import (box_area, box_iou, cxcywh_to_xyxy, elementwise_box_iou,
                                     xyxy_to_cxcywh)


def test_format_round_trip_known_box():
    xyxy = np.array([[0.1, 0.2, 0.5, 0.8]])
    cxcywh = xyxy_to_cxcywh(xyxy)
    np.testing.assert_allclose(cxcywh, [[0.3, 0.5, 0.4, 0.6]])
    np.testing.assert_allclose(cxcywh_to_xyxy(cxcywh), xyxy)


def test_formats_keep_leading_axes():
    boxes = np.random.default_rng(0).uniform(size=(2, 3, 4))
    assert xyxy_to_cxcywh(boxes).shape == (2, 3, 4)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


def test_box_area_clamps_inverted_boxes_to_zero():
    np.testing.assert_allclose(box_area(np.array([[0, 0, 2, 3], [1, 1, 0, 2], [0, 0, 0, 0]])),
                               [6, 0, 0])


def test_iou_hand_computed():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0],    # inter 1, union 4 + 4 - 1 = 7
                  [0.0, 0.0, 2.0, 2.0],    # identical
                  [2.0, 0.0, 4.0, 2.0],    # touching edge: inter 0
                  [0.5, 0.5, 1.5, 1.5],    # inside: 1 / 4
                  [5.0, 5.0, 6.0, 6.0]])   # disjoint
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0, 0.25, 0.0]])


def test_iou_zero_area_boxes_give_zero_not_nan():
    point = np.array([[0.5, 0.5, 0.5, 0.5]])
    line = np.array([[0.2, 0.5, 0.8, 0.5]])
    box = np.array([[0.0, 0.0, 1.0, 1.0]])
    with np.errstate(all="raise"):  # no 0/0 warnings either
        out = box_iou(np.concatenate([point, line, box]), np.concatenate([point, line, box]))
    assert not np.any(np.isnan(out))
    np.testing.assert_allclose(out, [[0, 0, 0], [0, 0, 0], [0, 0, 1]])


def test_iou_empty_inputs():
    assert box_iou(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    assert box_iou(np.ones((2, 4)), np.zeros((0, 4))).shape == (2, 0)


def test_iou_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"b must have shape \(M, 4\)"):
        box_iou(np.zeros((2, 4)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="last axis of 4"):
        xyxy_to_cxcywh(np.zeros((3, 3)))


_box_rows = hnp.arrays(np.float64, st.tuples(st.integers(0, 6), st.just(4)),
                       elements=st.floats(0, 1, allow_nan=False))


@given(_box_rows, _box_rows)
def test_iou_matches_scalar_loop_and_is_symmetric(a, b):
    # Sort the corners so every box is valid (possibly of zero area).
    a = np.concatenate([np.minimum(a[:, :2], a[:, 2:]), np.maximum(a[:, :2], a[:, 2:])], axis=1)
    b = np.concatenate([np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])], axis=1)
    out = box_iou(a, b)
    for m in range(len(a)):
        for k in range(len(b)):
            iw = max(0.0, min(a[m, 2], b[k, 2]) - max(a[m, 0], b[k, 0]))
            ih = max(0.0, min(a[m, 3], b[k, 3]) - max(a[m, 1], b[k, 1]))
            union = ((a[m, 2] - a[m, 0]) * (a[m, 3] - a[m, 1])
                     + (b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1]) - iw * ih)
            expected = iw * ih / union if union > 0 else 0.0
            assert out[m, k] == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(out, box_iou(b, a).T)
    assert np.all((out >= 0) & (out <= 1 + 1e-12))


def test_elementwise_iou_is_the_diagonal_and_broadcasts():
    rng = np.random.default_rng(1)
    def random_boxes():
        p, q = rng.uniform(size=(5, 2)), rng.uniform(size=(5, 2))
        return np.concatenate([np.minimum(p, q), np.maximum(p, q)], axis=1)

    a, b = random_boxes(), random_boxes()
    np.testing.assert_allclose(elementwise_box_iou(a, b), np.diag(box_iou(a, b)))
    # (5, 1, 4) against (1, 5, 4) is the pairwise matrix again.
    np.testing.assert_allclose(elementwise_box_iou(a[:, None], b[None]), box_iou(a, b))
