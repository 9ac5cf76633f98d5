"""Data-parallel training: N processes (ranks), each training 1/N of every global batch.

    communicator.py   the collectives every rank calls in the same order (one process: no-ops)
    mpi.py            those collectives over MPI (mpi4py) for NumPy arrays, NCCL for CuPy ones
    nccl.py           NCCL through CuPy, bootstrapped over MPI (ChainerMN's way)
    gradients.py      gradient averaging: one flat buffer, or buckets filled by gradient hooks
    buffers.py        batch-norm running statistics averaged, models checked equal across ranks
    sync_bn.py        batch norm with the statistics of the global batch
    sharding.py       rank r's slice of every global batch of the single-process order
    agreement.py      one small exchange per step: mean losses, stop requests, non-finite losses
    replica.py        DataParallel: what a training step adds, in two calls
    together.py       a step every rank takes before the next exchange, failing together
    launch.py         the mpiexec command line behind ``train --nproc N``
"""
from .agreement import StepAgreement, agree_step
from .buffers import ModelsDiffer, average_buffers, check_same_model
from .communicator import Communicator, SingleProcess, world
from .gradients import GradientBuckets, average_gradients
from .launch import LaunchError, mpiexec_command
from .replica import DataParallel
from .sharding import ShardedLoader, shard
from .sync_bn import SyncBatchNorm, combine_statistics, use_sync_batch_norm
from .together import (FailedOnAnotherRank, agreed, from_main, leave_together, share_from_main,
                       together)

__all__ = ["Communicator", "SingleProcess", "world", "average_gradients", "GradientBuckets",
           "average_buffers", "check_same_model",
           "ModelsDiffer", "SyncBatchNorm", "combine_statistics",
           "use_sync_batch_norm", "shard", "ShardedLoader", "StepAgreement", "agree_step",
           "LaunchError", "mpiexec_command", "DataParallel", "FailedOnAnotherRank", "agreed",
           "together", "from_main", "share_from_main", "leave_together"]
