"""The NCCL side (the issue's test 5) through the counting CuPy stand-in and a stand-in for
cupy.cuda.nccl that records every call: the ChainerMN bootstrap (rank 0's unique id broadcast
over MPI), one allreduce per bucket in bucket order on the current stream, no host
synchronisation, and the averaged gradients. The real NCCL run is for a GPU machine."""
import ctypes

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.distributed import GradientBuckets, average_gradients
from tinygrad_yolo.distributed.communicator import Communicator, Finished
from tinygrad_yolo.distributed.nccl import NcclCommunicator
from tinygrad_yolo.testing import fake_cupy
from tinygrad_yolo.utils import seed

RANKS = 2


class FakeNccl:
    """cupy.cuda.nccl for one rank of RANKS whose peers hold the same arrays: a sum over the
    ranks is RANKS times this rank's array."""
    NCCL_UINT8, NCCL_INT32, NCCL_INT64, NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 1, 2, 4, 6, 7, 8
    NCCL_SUM = 0
    DTYPES = {7: np.float32, 8: np.float64}

    def __init__(self):
        self.calls = []

    def get_unique_id(self):
        self.calls.append(("get_unique_id",))
        return (42,) * 8

    def NcclCommunicator(self, ndev, uid, rank):
        self.calls.append(("NcclCommunicator", ndev, uid, rank))
        return FakeNcclComm(self)


class FakeNcclComm:
    def __init__(self, nccl):
        self.nccl = nccl

    def device_array(self, ptr, count, dtype):
        nbytes = count * np.dtype(self.nccl.DTYPES[dtype]).itemsize
        fake_cupy.counter.check_extent("nccl", ptr, nbytes)
        raw = (ctypes.c_char * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=self.nccl.DTYPES[dtype])

    def allReduce(self, send, recv, count, dtype, op, stream):
        self.nccl.calls.append(("allReduce", count, dtype, op, stream))
        assert send == recv  # in place
        self.device_array(recv, count, dtype)[...] *= RANKS

    def bcast(self, buf, count, dtype, root, stream):
        self.nccl.calls.append(("bcast", count, dtype, root, stream))


class FakeMPI:
    """mpi4py's communicator as rank 0 of RANKS sees it."""

    def __init__(self):
        self.broadcasts = []

    def Get_rank(self):
        return 0

    def Get_size(self):
        return RANKS

    def bcast(self, obj, root=0):
        self.broadcasts.append((obj, root))
        return obj


class NcclRanks(Communicator):
    """Rank 0 of RANKS exchanging device arrays through NcclCommunicator only."""
    rank, size = 0, RANKS

    def __init__(self, nccl):
        self.nccl = nccl

    def allreduce_(self, array):
        return self.nccl.allreduce_(array)

    def start_allreduce_(self, array):
        self.nccl.allreduce_(array)
        return Finished()


@pytest.fixture
def device(monkeypatch):
    with fake_cupy.installed() as cp:
        nccl = FakeNccl()
        monkeypatch.setattr(cp.cuda, "nccl", nccl, raising=False)
        yield cp, nccl


def model_and_loss():
    seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3))
    model.to("cuda")
    x = tg.Tensor(np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32),
                  device="cuda")
    return model, (model(x) ** 2).mean()


def test_the_communicator_is_bootstrapped_the_chainermn_way(device):
    _, nccl = device
    mpi = FakeMPI()
    NcclCommunicator(mpi)
    assert nccl.calls == [("get_unique_id",), ("NcclCommunicator", RANKS, (42,) * 8, 0)]
    assert mpi.broadcasts == [((42,) * 8, 0)]


def test_buckets_are_one_allreduce_each_in_bucket_order_on_the_current_stream(device):
    cp, nccl = device
    model, loss = model_and_loss()
    buckets = GradientBuckets(model.parameters(), NcclRanks(NcclCommunicator(FakeMPI())),
                              bucket_bytes=300)
    loss.backward()
    started_in_backward = sum(c[0] == "allReduce" for c in nccl.calls)
    before = [p.grad.numpy().copy() for p in model.parameters()]
    fake_cupy.counter.reset()
    buckets.finish()
    reduces = [c for c in nccl.calls if c[0] == "allReduce"]
    sizes = [b.array.size for b in buckets.buckets]
    assert len(buckets.buckets) >= 3
    assert [c[1] for c in reduces] == sizes  # in bucket order: the last layers' first
    assert buckets.buckets[0].params[0] is list(model.parameters())[-1]  # the last layer's first
    assert started_in_backward == len(sizes)  # each bucket left from a hook, during the backward
    stream = cp.cuda.get_current_stream().ptr
    assert all(c[2:] == (FakeNccl.NCCL_FLOAT32, FakeNccl.NCCL_SUM, stream) for c in reduces)
    assert sum(fake_cupy.counter.syncs.values()) == 0  # the exchange never waits on the host
    for p, g in zip(model.parameters(), before):  # identical peers: the mean is this rank's own
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_the_flat_buffer_is_one_allreduce(device):
    _, nccl = device
    model, loss = model_and_loss()
    loss.backward()
    before = [p.grad.numpy().copy() for p in model.parameters()]
    average_gradients(model.parameters(), NcclRanks(NcclCommunicator(FakeMPI())))
    reduces = [c for c in nccl.calls if c[0] == "allReduce"]
    assert [c[1] for c in reduces] == [sum(p.size for p in model.parameters())]
    for p, g in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_broadcast_and_dtypes(device):
    cp, nccl = device
    comm = NcclCommunicator(FakeMPI())
    comm.broadcast_(cp.zeros(5, dtype=np.float64), root=0)
    assert nccl.calls[-1] == ("bcast", 5, FakeNccl.NCCL_FLOAT64, 0, 0)
    with pytest.raises(TypeError, match="NCCL cannot exchange complex64 arrays"):
        comm.allreduce_(cp.zeros(3, dtype=np.complex64))
    with pytest.raises(ValueError, match="C-contiguous"):
        comm.allreduce_(cp.zeros((4, 4), dtype=np.float32)[:, ::2])
