"""Which images each rank trains: rank r takes the r-th of N equal slices of every global batch
of the single-process order. The union over the ranks is exactly the one-process batch, and
every image's augmentation is drawn from (seed, epoch, index) (data/loader.py), so it is the
same whichever rank loads it.
"""
from ..data import DataLoader


def shard(batch, rank, size):
    """Rank ``rank``'s slice of the global batch ``batch`` (indices): contiguous, b = len / size."""
    if len(batch) % size:
        raise ValueError(f"a batch of {len(batch)} does not split into {size} equal shares")
    share = len(batch) // size
    return batch[rank * share:(rank + 1) * share]


class ShardedLoader(DataLoader):
    """A DataLoader over the global batches of ``batch_size`` (the same steps per epoch as one
    process) that loads only rank ``rank``'s share of each. Arguments as DataLoader's."""

    def __init__(self, dataset, batch_size, transform, rank=0, size=1, **kwargs):
        if batch_size % size:
            raise ValueError(f"--batch-size {batch_size} does not split over {size} processes: "
                             f"use a multiple of {size}")
        if kwargs.get("drop_last") is False and len(dataset) % batch_size:
            raise ValueError("a sharded loader drops the last, incomplete batch: "
                             "pass drop_last=True")
        kwargs["drop_last"] = True
        super().__init__(dataset, batch_size, transform, **kwargs)
        self.rank, self.size = int(rank), int(size)

    def batch_indices(self, epoch):
        return [shard(batch, self.rank, self.size) for batch in super().batch_indices(epoch)]
