"""Sharding (the issue's test 3): the ranks' shares of every global batch are exactly the
one-process batch, in its order, with the same augmentation whichever rank loads an image."""
from types import SimpleNamespace

import numpy as np
import pytest

from tinygrad_yolo.data import DataLoader
from tinygrad_yolo.distributed import ShardedLoader, shard


class Numbers:
    """A dataset whose image i is filled with i (so a batch's images name its indices)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image = np.full((3, 2, 2), float(i), dtype=np.float32)
        return SimpleNamespace(image=image, boxes=np.zeros((0, 4)), labels=np.zeros(0),
                               difficult=np.zeros(0, bool), id=str(i), path=f"{i}.png")


def jitter(image, boxes, labels, difficult, rng):
    """An augmentation drawn from the sample's own generator."""
    return image + rng.random(), boxes, labels, difficult


@pytest.mark.parametrize("n, batch, ranks, seed", [(37, 8, 2, 0), (40, 12, 3, 5), (64, 16, 4, 9),
                                                   (10, 2, 2, 3), (23, 6, 1, 1)])
def test_the_shares_cover_exactly_the_one_process_batches(n, batch, ranks, seed):
    one = DataLoader(Numbers(n), batch, jitter, shuffle=True, drop_last=True, seed=seed)
    shards = [ShardedLoader(Numbers(n), batch, jitter, rank=r, size=ranks, shuffle=True, seed=seed)
              for r in range(ranks)]
    for epoch in range(3):
        whole = one.batch_indices(epoch)
        parts = [s.batch_indices(epoch) for s in shards]
        assert all(len(p) == len(whole) == n // batch for p in parts)  # the same steps per epoch
        for k, indices in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), indices)


def test_an_image_is_augmented_alike_on_whichever_rank_loads_it():
    one = DataLoader(Numbers(24), 8, jitter, drop_last=True, num_workers=0, seed=4)
    shards = [ShardedLoader(Numbers(24), 8, jitter, rank=r, size=2, num_workers=0, seed=4)
              for r in range(2)]
    for whole, *parts in zip(one.stream(1), *[s.stream(1) for s in shards]):
        if whole[0] > 2:
            break
        assert all(p[:2] == whole[:2] for p in parts)  # the same epoch and step
        images = np.concatenate([p[2].images for p in parts])
        np.testing.assert_array_equal(images, whole[2].images)


def test_shard_takes_contiguous_equal_slices():
    batch = np.arange(12)
    assert [list(shard(batch, r, 3)) for r in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7],
                                                           [8, 9, 10, 11]]
    with pytest.raises(ValueError, match="10 does not split into 4"):
        shard(np.arange(10), 0, 4)


def test_a_batch_size_the_processes_do_not_divide_is_one_line():
    with pytest.raises(ValueError, match=r"--batch-size 10 does not split over 4 processes: use a "
                                         r"multiple of 4"):
        ShardedLoader(Numbers(40), 10, jitter, rank=0, size=4)


@pytest.mark.parametrize("total, size", [(7, 2), (8, 2), (5, 3), (2, 4), (6, 1)])
def test_validation_shares_merge_back_into_the_splits_order(total, size):
    from tinygrad_yolo.training.loop import merge_shares
    detections, truths = [f"d{i}" for i in range(total)], [f"t{i}" for i in range(total)]
    shares = [(detections[r::size], truths[r::size]) for r in range(size)]  # as the ranks find them
    assert merge_shares(shares, total) == (detections, truths)
