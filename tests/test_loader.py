"""DataLoader: batch layout, epoch coverage, determinism under thread timing, errors, shutdown."""

import random
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tinygrad_yolo.data.loader import DataLoader, DataLoaderError
from tinygrad_yolo.data.synthetic import generate_synthetic_voc
from tinygrad_yolo.data.transforms import EvalTransform, TrainTransform
from tinygrad_yolo.data.voc import DatasetError, Sample, VOCDataset


class TinyDataset:
    """In-memory samples: image i is filled with value i (so batches can be traced back)."""

    def __init__(self, n, size=(20, 16)):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = Image.new("RGB", self.size, (i % 256, 0, 0))
        boxes = np.array([[0.3, 0.3, 0.6, 0.7]] * (i % 3), np.float32).reshape(-1, 4)
        return Sample(img, boxes, np.full(len(boxes), i % 20, np.int64), np.zeros(len(boxes), bool),
                      f"id{i}", f"/fake/{i}.jpg")


class JitteryTransform:
    """TrainTransform that sleeps a random, unseeded time: thread timing varies run to run."""

    def __init__(self, size):
        self.inner = TrainTransform(size)

    def __call__(self, *args, **kwargs):
        time.sleep(random.random() * 0.003)
        return self.inner(*args, **kwargs)


def _loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("tinygrad_yolo-loader")]


def test_batch_shapes_dtypes_and_len():
    loader = DataLoader(TinyDataset(10), batch_size=4, transform=EvalTransform(8), shuffle=False)
    assert len(loader) == 3
    batches = list(loader)
    assert [b.images.shape for b in batches] == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    b = batches[0]
    assert b.images.dtype == np.float32 and b.ids == ["id0", "id1", "id2", "id3"]
    assert [x.shape for x in b.boxes] == [(0, 4), (1, 4), (2, 4), (0, 4)]
    assert all(x.dtype == np.float32 for x in b.boxes)
    assert all(x.dtype == np.int64 for x in b.labels)
    assert all(x.dtype == bool for x in b.difficult) and b.indices.tolist() == [0, 1, 2, 3]
    # sample i has value i
    np.testing.assert_allclose(b.images[:, 0, 0, 0], np.arange(4) / 255, atol=1e-7)
    dropped = DataLoader(TinyDataset(10), 4, EvalTransform(8), drop_last=True)
    assert len(dropped) == 2 and [len(b.ids) for b in dropped] == [4, 4]
    empty = DataLoader(TinyDataset(0), 4, EvalTransform(8))
    assert len(empty) == 0 and list(empty) == []


def test_every_index_once_per_epoch_and_epochs_differ():
    loader = DataLoader(TinyDataset(23), batch_size=5, transform=EvalTransform(4), seed=1)
    orders = []
    for _ in range(3):
        idx = np.concatenate([b.indices for b in loader])
        assert sorted(idx.tolist()) == list(range(23))
        orders.append(idx.tolist())
    assert orders[0] != orders[1] != orders[2] and loader.epoch == 3
    loader.set_epoch(1)  # replays epoch 1
    assert np.concatenate([b.indices for b in loader]).tolist() == orders[1]
    in_order = DataLoader(TinyDataset(23), 5, EvalTransform(4), shuffle=False)
    assert np.concatenate([b.indices for b in in_order]).tolist() == list(range(23))


def test_deterministic_regardless_of_threads_and_timing(tmp_path):
    root = generate_synthetic_voc(tmp_path, n_train=20, n_val=0, img_size=48, seed=2)
    ds = VOCDataset(root, "train")

    def run(workers, prefetch):
        loader = DataLoader(ds, batch_size=6, transform=JitteryTransform(32), num_workers=workers,
                            prefetch=prefetch, seed=5)
        return [list(loader) for _ in range(2)]  # two epochs

    reference = run(0, 1)
    # epochs augment differently
    assert not np.array_equal(reference[0][0].images, reference[1][0].images)
    for workers, prefetch in ((1, 1), (3, 2)):
        other = run(workers, prefetch)
        for epoch_a, epoch_b in zip(reference, other):
            assert len(epoch_a) == len(epoch_b) == 4
            for a, b in zip(epoch_a, epoch_b):
                assert a.ids == b.ids
                np.testing.assert_array_equal(a.images, b.images)
                for field in ("boxes", "labels", "difficult"):
                    for x, y in zip(getattr(a, field), getattr(b, field)):
                        np.testing.assert_array_equal(x, y)


def test_worker_error_propagates_with_file_name(tmp_path):
    root = generate_synthetic_voc(tmp_path, n_train=9, n_val=0, img_size=48, seed=0)
    ds = VOCDataset(root, "train")
    bad = root / "JPEGImages" / "000004.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # header survives, pixel data doesn't
    loader = DataLoader(ds, batch_size=2, transform=EvalTransform(16), num_workers=2, shuffle=False)
    with pytest.raises(DatasetError, match=r"000004\.jpg"):
        list(loader)

    def failing(image, boxes, labels, difficult, rng=None):
        raise RuntimeError("boom")

    with pytest.raises(DataLoaderError, match=r"/fake/\d+\.jpg.*RuntimeError: boom"):
        list(DataLoader(TinyDataset(4), 2, failing, num_workers=2))
    time.sleep(0.05)
    assert _loader_threads() == []


def test_abandoned_iterator_stops_its_threads():
    loader = DataLoader(TinyDataset(200), batch_size=4, transform=JitteryTransform(8),
                        num_workers=3, prefetch=2)
    for _ in loader:
        break  # the for loop drops the generator -> its finally cancels and joins
    assert _loader_threads() == []
    it = iter(loader)
    next(it)
    assert len(_loader_threads()) == 3
    del it
    assert _loader_threads() == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TinyDataset(3), 0, EvalTransform(4))
    with pytest.raises(TypeError, match="callable"):
        DataLoader(TinyDataset(3), 2, None)
    with pytest.raises(ValueError, match="prefetch"):
        DataLoader(TinyDataset(3), 2, EvalTransform(4), prefetch=0)
    with pytest.raises(TypeError, match="collate must be callable"):
        DataLoader(TinyDataset(3), 2, EvalTransform(4), collate=3)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_collate_turns_each_batch_into_what_iterating_yields_on_the_loading_threads(num_workers):
    threads = []

    def collate(batch):
        threads.append(threading.current_thread().name)
        return batch.indices.tolist(), int(sum(len(b) for b in batch.boxes))

    plain = list(DataLoader(TinyDataset(7), 3, EvalTransform(4), shuffle=False))
    loader = DataLoader(TinyDataset(7), 3, EvalTransform(4), shuffle=False, num_workers=num_workers,
                        collate=collate)
    assert list(loader) == [(b.indices.tolist(), sum(len(x) for x in b.boxes)) for b in plain]
    in_workers = [name.startswith("tinygrad_yolo-loader") for name in threads]
    assert in_workers == [num_workers > 0] * 3  # off the main thread when there are workers


def test_mismatched_transform_output_shapes_are_reported():
    def ragged(image, boxes, labels, difficult, rng=None):
        size = 4 + int(labels.size)  # differs between samples
        return np.zeros((3, size, size), np.float32), boxes, labels, difficult

    with pytest.raises(DataLoaderError, match="transformed to shape"):
        list(DataLoader(TinyDataset(6), 3, ragged, shuffle=False, num_workers=0))


def test_data_layer_does_not_import_the_engine():
    import ast
    import pathlib

    import tinygrad_yolo.data as data

    for path in pathlib.Path(data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                # only sibling modules (level 1) and third-party/stdlib (level 0, not our package)
                assert node.level in (0, 1), path
                assert not (node.module or "").startswith("tinygrad_yolo"), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("tinygrad_yolo") for a in node.names), path


def test_iterate_from_a_batch_resumes_mid_epoch():
    """A run resumed at batch k sees exactly batches k.. of the uninterrupted epoch."""
    full = DataLoader(TinyDataset(11), 3, TrainTransform(8), shuffle=True, seed=3, num_workers=0)
    full.set_epoch(1)
    every = list(full)
    part = DataLoader(TinyDataset(11), 3, TrainTransform(8), shuffle=True, seed=3, num_workers=2)
    part.set_epoch(1)
    rest = list(part.iterate(start_batch=2))
    assert len(rest) == len(every) - 2 and part.epoch == 2
    for a, b in zip(every[2:], rest):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.images, b.images)
