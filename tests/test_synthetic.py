"""Synthetic VOC generator: determinism, validity, tight boxes, and ensure_synthetic_voc's
caching."""

import warnings

import numpy as np
import pytest

from tinygrad_yolo.data.synthetic import (
    COMPLETE_MARKER,
    PROGRESS_MARKER,
    SHAPES,
    SYNTHETIC_CLASSES,
    _shape_mask,
    ensure_synthetic_voc,
    generate_synthetic_voc,
    render_image,
)
from tinygrad_yolo.data.voc import DatasetError, VOCDataset

SMALL = dict(n_train=12, n_val=5, img_size=64)


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = _files(generate_synthetic_voc(tmp_path / "a", seed=3, **SMALL))
    b = _files(generate_synthetic_voc(tmp_path / "b", seed=3, **SMALL))
    c = _files(generate_synthetic_voc(tmp_path / "c", seed=4, **SMALL))
    assert len(a) == 2 * (12 + 5) + 5  # images + xmls + train/val/trainval + classes.txt + marker
    assert a == b
    assert a.keys() == c.keys()
    assert sum(a[k] != c[k] for k in a if k.endswith(".jpg")) == 17


def test_dataset_is_valid_voc(tmp_path):
    root = generate_synthetic_voc(tmp_path, seed=1, **SMALL)
    assert (root / "classes.txt").read_text().split() == list(SYNTHETIC_CLASSES)
    assert len(SYNTHETIC_CLASSES) == 20 == len(set(SYNTHETIC_CLASSES))
    all_ids = set()
    for split, n in (("train", 12), ("val", 5)):
        ids = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        assert len(ids) == n and not all_ids & set(ids)
        all_ids |= set(ids)
        for i in ids:
            assert (root / "JPEGImages" / f"{i}.jpg").is_file()
            assert (root / "Annotations" / f"{i}.xml").is_file()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no clipped/dropped boxes, no size mismatch
            ds = VOCDataset(root, split)
        assert ds.classes == list(SYNTHETIC_CLASSES) and len(ds) == n
        for k in range(n):
            s = ds[k]
            assert s.image.size == (64, 64)
            assert 1 <= len(s.boxes) <= 4
            assert ((s.boxes >= 0) & (s.boxes <= 1)).all()
            assert (s.boxes[:, 2:] > s.boxes[:, :2]).all()
            assert ((s.labels >= 0) & (s.labels < 20)).all() and not s.difficult.any()
    assert (root / "ImageSets" / "Main" / "trainval.txt").read_text().split() == sorted(all_ids)


def test_boxes_round_trip_through_the_xml(tmp_path):
    root = generate_synthetic_voc(tmp_path, n_train=4, n_val=0, img_size=80, seed=7)
    ds = VOCDataset(root, "train")
    for k in range(4):  # image k of "train" draws from rng([seed, 0, k])
        _, boxes, classes = render_image(np.random.default_rng([7, 0, k]), 80)
        np.testing.assert_array_equal(ds[k].boxes * 80, np.array(boxes, np.float32))
        assert ds[k].labels.tolist() == classes


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("box", [(3, 4, 13, 12), (10, 7, 41, 30), (0, 0, 48, 48), (20, 30, 25, 35)])
def test_every_shape_fills_its_box_exactly(shape, box):
    assert _shape_mask(shape, 48, *box).getbbox() == box


def test_objects_are_mostly_visible_and_sizes_span_the_range():
    sides = []
    for k in range(60):
        image, boxes, classes = render_image(np.random.default_rng([0, 0, k]), 128)
        assert len(boxes) == len(classes) >= 1
        for x0, y0, x1, y1 in boxes:
            sides.append(np.sqrt((x1 - x0) * (y1 - y0)) / 128)
    sides = np.array(sides)
    # boxes shrink only where occluded (min_visible 0.7), so the range stays ~0.12..0.6
    assert sides.min() < 0.16 and sides.max() > 0.5 and sides.min() > 0.05


def test_difficulty_knob_changes_noise(tmp_path):
    def roughness(difficulty):
        img, _, _ = render_image(np.random.default_rng(5), 96, difficulty=difficulty)
        a = np.asarray(img, np.float32)
        return np.abs(np.diff(a, axis=1)).mean()

    assert roughness(1.0) > 1.5 * roughness(0.0)
    with pytest.raises(ValueError, match="difficulty"):
        generate_synthetic_voc("/nonexistent/never", difficulty=2.0)


def test_ensure_generates_once_and_redoes_interrupted_runs(tmp_path):
    root = tmp_path / "synth"
    ensure_synthetic_voc(root, **SMALL)
    jpg = root / "JPEGImages" / "000000.jpg"
    stamp = jpg.stat().st_mtime_ns
    ensure_synthetic_voc(root, **SMALL)
    assert jpg.stat().st_mtime_ns == stamp  # complete and same arguments: untouched

    (root / COMPLETE_MARKER).unlink()  # as if interrupted before the marker was written
    (root / PROGRESS_MARKER).write_text("{}")
    jpg.unlink()
    ensure_synthetic_voc(root, **SMALL)
    assert jpg.is_file() and (root / COMPLETE_MARKER).is_file()
    assert not (root / PROGRESS_MARKER).exists()

    ensure_synthetic_voc(root, **{**SMALL, "n_train": 3})  # different arguments: regenerated
    train_ids = (root / "ImageSets" / "Main" / "train.txt").read_text().split()
    assert train_ids == ["000000", "000001", "000002"]
    # stale files of the bigger run are gone
    assert not (root / "JPEGImages" / "000010.jpg").exists()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("my real dataset")
    with pytest.raises(DatasetError, match="non-empty"):
        ensure_synthetic_voc(tmp_path, **SMALL)
    assert (tmp_path / "precious.txt").read_text() == "my real dataset"
