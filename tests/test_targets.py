"""YOLOv1 target encoding: one object per cell, cell-relative centres."""
import numpy as np
import pytest

from tinygrad_yolo.detection import encode_batch, encode_targets


def test_single_box_lands_in_its_cell():
    # Centre (0.5, 0.3) with S=4: column floor(2.0)=2, row floor(1.2)=1;
    # cell-relative offsets x = 2.0 - 2 = 0, y = 1.2 - 1 = 0.2.
    target, dropped = encode_targets(np.array([[0.4, 0.1, 0.6, 0.5]]), np.array([3]), S=4, C=5)
    assert target.shape == (4, 4, 10) and target.dtype == np.float32 and dropped == 0
    np.testing.assert_allclose(target[1, 2], [0.0, 0.2, 0.2, 0.4, 1, 0, 0, 0, 1, 0], atol=1e-6)
    assert target[..., 4].sum() == 1  # every other cell is empty
    assert np.count_nonzero(target) == np.count_nonzero(target[1, 2])


def test_centre_at_one_goes_to_last_cell():
    target, _ = encode_targets(np.array([[0.8, 0.8, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]),
                               np.array([0, 1]), S=2, C=2)
    # (0.9, 0.9) -> cell (1, 1); the zero-area box at (1, 1) also -> cell (1, 1) and is dropped.
    assert target[1, 1, 4] == 1 and target[..., 4].sum() == 1
    target, _ = encode_targets(np.array([[1.0, 0.0, 1.0, 0.2]]), np.array([1]), S=2, C=2)
    np.testing.assert_allclose(target[0, 1, :5], [1.0, 0.2, 0.0, 0.2, 1.0], atol=1e-6)


def test_several_centres_in_one_cell_keep_the_largest():
    boxes = np.array([[0.05, 0.05, 0.15, 0.15],   # centre (0.1, 0.1), area 0.01
                      [0.00, 0.00, 0.30, 0.30],   # centre (0.15, 0.15), area 0.09: largest
                      [0.10, 0.10, 0.20, 0.20],   # centre (0.15, 0.15), area 0.01
                      [0.60, 0.60, 0.90, 0.90]])  # another cell
    target, dropped = encode_targets(boxes, np.array([0, 1, 2, 0]), S=2, C=3)
    assert dropped == 2
    np.testing.assert_allclose(target[0, 0], [0.3, 0.3, 0.3, 0.3, 1, 0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(target[1, 1], [0.5, 0.5, 0.3, 0.3, 1, 1, 0, 0], atol=1e-6)


def test_no_objects():
    for boxes, labels in [(np.zeros((0, 4)), np.zeros(0, dtype=int)), ([], [])]:
        target, dropped = encode_targets(boxes, labels, S=3, C=2)
        assert dropped == 0 and target.shape == (3, 3, 7) and not target.any()


def test_float_labels_are_accepted_when_whole():
    target, _ = encode_targets(np.array([[0.1, 0.1, 0.2, 0.2]]), np.array([2.0]), S=2, C=3)
    assert target[0, 0, 5 + 2] == 1


def test_encode_batch_stacks_and_sums_dropped():
    two_in_one_cell = np.array([[0.0, 0.0, 0.2, 0.2], [0.0, 0.0, 0.1, 0.1]])
    targets, dropped = encode_batch([two_in_one_cell, np.zeros((0, 4)), two_in_one_cell],
                                    [np.array([0, 1]), np.zeros(0, int), np.array([1, 0])],
                                    S=3, C=2)
    assert targets.shape == (3, 3, 3, 7) and dropped == 2
    np.testing.assert_array_equal(targets[:, 0, 0, 5:], [[1, 0], [0, 0], [0, 1]])


@pytest.mark.parametrize("boxes, labels, message", [
    (np.zeros((2, 5)), np.zeros(2, int), r"boxes must have shape \(M, 4\)"),
    (np.zeros((2, 4)), np.zeros(3, int), r"labels must have shape \(2,\)"),
    (np.array([[0, 0, np.nan, 1]]), np.zeros(1, int), "non-finite"),
    (np.array([[0, 0, np.inf, 1]]), np.zeros(1, int), "non-finite"),
    (np.array([[0, 0, 1.5, 1]]), np.zeros(1, int), r"outside \[0, 1\]"),
    (np.array([[0.5, 0, 0.2, 1]]), np.zeros(1, int), "x2 < x1"),
    (np.array([[0, 0, 1, 1]]), np.array([4]), r"labels must lie in \[0, 4\)"),
    (np.array([[0, 0, 1, 1]]), np.array([-1]), r"labels must lie in \[0, 4\)"),
    (np.array([[0, 0, 1, 1]]), np.array([0.5]), "whole numbers"),
])
def test_bad_inputs_raise_clear_errors(boxes, labels, message):
    with pytest.raises(ValueError, match=message):
        encode_targets(boxes, labels, S=2, C=4)


def test_encode_batch_names_the_bad_image():
    with pytest.raises(ValueError, match="image 1: .*labels must lie"):
        encode_batch([np.zeros((0, 4)), np.array([[0, 0, 1, 1]])], [[], [7]], S=2, C=4)
    with pytest.raises(ValueError, match="2 box arrays but 1 label arrays"):
        encode_batch([np.zeros((0, 4))] * 2, [[]], S=2, C=4)
