"""A rank of `tinygrad-yolo train` with a fault injected on one rank, for the end-to-end
data-parallel tests: ``mpiexec -n 2 python -m mpi4py tests/distributed_train_rank.py FAULT
train ...``. FAULT is ``none``, ``nan-on-rank-1`` (rank 1's loss becomes NaN at its third step)
or ``raise-on-rank-1`` (rank 1's third step raises).
"""
import sys

import numpy as np

from tinygrad_yolo.cli import main
from tinygrad_yolo.detection import YOLOv1Loss
from tinygrad_yolo.distributed import world

FAULTY_RANK, FAULTY_CALL = 1, 3


class InjectedFault(RuntimeError):
    """What ``raise-on-rank-1`` raises: not a user error, so its traceback is printed."""


def inject(fault):
    if fault == "none" or world().rank != FAULTY_RANK:
        return
    original, calls = YOLOv1Loss.__call__, [0]

    def faulty(self, pred, targets):
        loss, parts = original(self, pred, targets)
        calls[0] += 1
        if calls[0] == FAULTY_CALL:
            if fault == "raise-on-rank-1":
                raise InjectedFault(f"injected on rank {FAULTY_RANK}")
            loss = loss * np.float32("nan")
        return loss, parts
    YOLOv1Loss.__call__ = faulty


if __name__ == "__main__":
    inject(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
