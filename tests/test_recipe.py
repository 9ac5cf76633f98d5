"""The recipe: input size, grid, windows and steps chosen from a dataset's own statistics."""
import numpy as np
import pytest

from tinygrad_yolo.data import DetectionDataset, Record
from tinygrad_yolo.training import TrainConfig, TrainError
from tinygrad_yolo.training import recipe


def _dataset(n_images, boxes_per_image, side, rng=None, image=640):
    """n images of image x image pixels with square objects of the given relative side, at random
    places."""
    rng = rng or np.random.default_rng(0)
    records = []
    for i in range(n_images):
        c = rng.uniform(side / 2, 1 - side / 2, (boxes_per_image, 2))
        b = np.concatenate([c - side / 2, c + side / 2], axis=1).astype(np.float32)
        records.append(Record(f"i{i}", f"/x/{i}.jpg", "", image, image, b, ("a",) * boxes_per_image,
                              np.zeros(boxes_per_image, bool)))
    return DetectionDataset(records, ["a"])


def test_large_sparse_objects_get_the_smallest_input_and_grid_on_whole_images():
    p = recipe.plan(TrainConfig(), _dataset(150, 1, 0.3), None)
    assert (p.config.img_size, p.config.S, p.config.window) == (224, 7, 0)
    # the budget, not a few epochs
    assert p.config.steps == round(recipe.COMPUTE_BUDGET / (32 * 224 * 224))
    assert p.warmup_steps == round(0.1 * p.config.steps)


def test_small_crowded_objects_get_resolution_a_fine_grid_and_windows():
    p = recipe.plan(TrainConfig(), _dataset(200, 25, 0.06), None)
    assert p.config.img_size == 416  # 24 px / 6% -> 400 -> the next multiple of 32
    assert p.config.S == 26  # at stride 32 too many would share a cell
    assert p.config.window == 192
    notes = dict(p.notes)
    assert "stride 16" in notes["grid"] and "windows of 192" in notes["window"]
    assert p.augment["window"] == 192


def test_a_tiny_set_gets_at_least_the_minimum_epochs_and_a_batch_it_can_fill():
    p = recipe.plan(TrainConfig(), _dataset(6, 1, 0.3), None)
    assert p.config.batch_size == 6 and p.config.steps >= recipe.MIN_EPOCHS
    assert "smaller than --batch-size" in dict(p.notes)["batch"]


def test_given_options_win_and_epochs_become_steps():
    given = TrainConfig(img_size=320, S=10, window=0, epochs=3, batch_size=10)
    p = recipe.plan(given, _dataset(40, 2, 0.06), None)
    assert (p.config.img_size, p.config.S, p.config.window, p.config.steps) == (320, 10, 0, 12)
    assert p.config.epochs is None  # stored as steps: what a resumed run continues


def test_a_resumed_run_keeps_its_choices_and_may_only_extend():
    ds = _dataset(40, 2, 0.06)
    first = recipe.plan(TrainConfig(steps=50), ds, None).config
    saved = dict(first.__dict__)
    again = recipe.plan(TrainConfig(), ds, None, saved_config=saved).config
    assert (again.img_size, again.S, again.window) == (first.img_size, first.S, first.window)
    assert again.steps == 50
    assert recipe.plan(TrainConfig(steps=80), ds, None, saved_config=saved).config.steps == 80
    with pytest.raises(TrainError, match="can only extend"):
        recipe.plan(TrainConfig(steps=20), ds, None, saved_config=saved)


def test_shared_cell_fraction_counts_what_encode_targets_drops():
    from tinygrad_yolo.detection import encode_targets
    ds = _dataset(30, 8, 0.05, rng=np.random.default_rng(4))
    for S in (4, 7, 13):
        dropped = sum(encode_targets(r.boxes, np.zeros(len(r.boxes), int), S, 1)[1]
                      for r in ds.records)
        assert recipe.shared_cell_fraction(ds.records, S) == pytest.approx(dropped / (30 * 8))
