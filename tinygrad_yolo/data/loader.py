"""Batched loading with background threads.

Decoding (Pillow) and augmentation (Pillow resampling + NumPy) release the GIL for most of their
time, so plain threads overlap them with the model's compute without the cost of processes.

Determinism: the sample order of epoch e is a permutation drawn from (seed, e), and sample i's
augmentation draws from its own generator seeded with (seed, e, i).  Nothing depends on which
thread ran what or when, so num_workers and timing never change the batches.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, NamedTuple, Optional

import numpy as np

from .voc import DatasetError


_THREAD_PREFIX = "tinygrad_yolo-loader"


class DataLoaderError(RuntimeError):
    """A sample failed to load or transform; the message names the sample and its file."""


class Batch(NamedTuple):
    images: np.ndarray  # (N, 3, H, W) float32 in [0, 1]
    boxes: List[np.ndarray]  # N arrays (M_i, 4) float32 normalised xyxy
    labels: List[np.ndarray]  # N arrays (M_i,) int64
    difficult: List[np.ndarray]  # N arrays (M_i,) bool
    ids: List[str]
    indices: np.ndarray  # (N,) dataset indices


class _Cancelled(Exception):
    """Raised inside a worker when the iterator that wanted its batch has been closed."""


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of one sample: a function of (seed, epoch, index) only."""
    return np.random.default_rng([seed, epoch, 1, index])


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch, 0]).permutation(n)


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size`, transformed by `transform`.

    dataset:   ``len(ds)`` and ``ds[i]`` -> an object with image, boxes, labels, difficult, id, path
               (e.g. ``VOCDataset``'s ``Sample``).
    transform: ``transform(image, boxes, labels, difficult, rng=rng)`` -> (chw float32 image,
               boxes, labels, difficult); e.g. ``TrainTransform`` / ``EvalTransform``.  It must use
               only the rng it is given for randomness (that is what makes loading deterministic).
    num_workers: background threads (0 = load in the calling thread, handy for debugging).
    prefetch:  batches queued per worker ahead of the consumer (bounds memory: at most
               max(1, num_workers) * prefetch batches exist beyond the one being used).
    collate:   ``collate(batch)`` -> what iterating yields instead of the ``Batch``, made on the
               background threads with the batch (training encodes its targets there).

    Each ``iter(loader)`` runs one epoch and then advances the epoch counter; ``set_epoch(e)``
    chooses the epoch of the next iteration.  Breaking out of a loop, or dropping the iterator,
    cancels the queued work and stops the threads.
    """

    def __init__(self, dataset, batch_size: int, transform: Callable, shuffle: bool = True,
                 drop_last: bool = False, num_workers: int = 2, seed: int = 0, prefetch: int = 2,
                 collate: Optional[Callable] = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0 or prefetch < 1:
            raise ValueError(f"need num_workers >= 0 and prefetch >= 1, got {num_workers}, "
                             f"{prefetch}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        if collate is not None and not callable(collate):
            raise TypeError(f"collate must be callable, got {type(collate).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.transform = transform
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.prefetch = int(prefetch)
        self.collate = collate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch` for the next iteration (its order and augmentations)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batch_indices(self, epoch: int) -> List[np.ndarray]:
        """The dataset indices of every batch of `epoch`, in order."""
        order = epoch_order(len(self.dataset), self.seed, epoch, self.shuffle)
        return [order[k * self.batch_size:(k + 1) * self.batch_size] for k in range(len(self))]

    # ---- work done in the background threads ------------------------------------------------
    def _load_sample(self, index: int, epoch: int):
        try:
            sample = self.dataset[int(index)]
        except DatasetError:
            raise  # already names the file
        except Exception as e:
            raise DataLoaderError(f"loading sample {index} failed: {type(e).__name__}: {e}") from e
        try:
            rng = sample_rng(self.seed, epoch, int(index))
            return sample, self.transform(sample.image, sample.boxes, sample.labels,
                                          sample.difficult, rng=rng)
        except Exception as e:
            path = getattr(sample, "path", "?")
            raise DataLoaderError(f"transforming sample {index} ({path}) failed: "
                                  f"{type(e).__name__}: {e}") from e

    def _make_batch(self, indices: np.ndarray, epoch: int, cancelled: threading.Event):
        batch = self._batch(indices, epoch, cancelled)
        return batch if self.collate is None else self.collate(batch)

    def _batch(self, indices: np.ndarray, epoch: int, cancelled: threading.Event) -> Batch:
        images = None
        boxes, labels, difficult, ids = [], [], [], []
        for k, index in enumerate(indices):
            if cancelled.is_set():
                raise _Cancelled()
            sample, (image, b, lab, dif) = self._load_sample(index, epoch)
            if images is None:  # the first sample fixes the shape; allocate once per batch
                images = np.empty((len(indices),) + image.shape, dtype=np.float32)
            elif image.shape != images.shape[1:]:
                raise DataLoaderError(f"sample {index} ({getattr(sample, 'path', '?')}) "
                                      f"transformed to shape {image.shape}, but the batch has "
                                      f"{images.shape[1:]}")
            images[k] = image
            boxes.append(np.asarray(b, dtype=np.float32).reshape(-1, 4))
            labels.append(np.asarray(lab, dtype=np.int64).reshape(-1))
            difficult.append(np.asarray(dif, dtype=bool).reshape(-1))
            ids.append(sample.id)
        return Batch(images, boxes, labels, difficult, ids, np.asarray(indices, dtype=np.int64))

    # ---- iteration --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        return self.iterate()

    def iterate(self, start_batch: int = 0) -> Iterator[Batch]:
        """One epoch's batches from batch `start_batch` on (resuming a run mid-epoch: the skipped
        batches are neither loaded nor decoded, and the rest are exactly those of a full epoch)."""
        epoch = self.epoch
        self.epoch += 1
        jobs = [(epoch, k, idx) for k, idx in enumerate(self.batch_indices(epoch))
                if k >= start_batch]
        return (batch for _, _, batch in self._run(iter(jobs)))

    def stream(self, epoch: int = 0, start_batch: int = 0) -> Iterator:
        """(epoch, batch number, Batch) from batch `start_batch` of `epoch` on, epoch after epoch
        without end: one set of threads, and the next epoch's first batches load while this
        epoch's last ones train (a small dataset's epoch is a few steps; a stall at each start
        would cost a tenth of the run). The batches are exactly those of ``iterate``."""
        if len(self) == 0:
            raise DataLoaderError(f"{len(self.dataset)} samples make no batch of {self.batch_size} "
                                  f"with drop_last")

        def jobs():
            e, b = epoch, start_batch
            while True:
                for k, idx in enumerate(self.batch_indices(e)):
                    if k >= b:
                        yield e, k, idx
                e, b = e + 1, 0
        return self._run(jobs())

    def _run(self, jobs) -> Iterator:
        """(epoch, k, Batch) for each (epoch, k, indices) job, made in the background threads."""
        if self.num_workers == 0:
            never = threading.Event()
            return ((e, k, self._make_batch(idx, e, never)) for e, k, idx in jobs)
        return self._threaded(jobs)

    def _threaded(self, jobs) -> Iterator:
        cancelled = threading.Event()
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix=_THREAD_PREFIX)
        pending = deque()
        depth = self.num_workers * self.prefetch
        try:
            for e, k, idx in jobs:  # fill the queue
                pending.append((e, k, pool.submit(self._make_batch, idx, e, cancelled)))
                if len(pending) >= depth:
                    break
            while pending:
                e, k, future = pending.popleft()
                batch = future.result()  # re-raises a worker's exception here
                job = next(jobs, None)
                if job is not None:
                    pending.append((job[0], job[1], pool.submit(self._make_batch, job[2], job[0],
                                                                cancelled)))
                yield e, k, batch
        finally:
            # Normal end, an exception, break, or the generator being garbage-collected: stop the
            # running tasks at their next sample, drop the queued ones, and let the threads exit.
            # Joining waits at most for the sample each thread is on (never join from a worker
            # itself, which can happen if the garbage collector closes us there).
            cancelled.set()
            in_worker = threading.current_thread().name.startswith(_THREAD_PREFIX)
            pool.shutdown(wait=not in_worker, cancel_futures=True)

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"transform={self.transform!r}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, "
                f"num_workers={self.num_workers}, "
                f"seed={self.seed}, prefetch={self.prefetch})")
