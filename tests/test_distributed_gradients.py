"""Gradient averaging in one process, against a stand-in for 2 ranks whose peer holds the same
gradients (so the mean is this rank's own): buffers split by dtype and size, a parameter that got
no gradient counts as zero, buckets start in index order only, hooks can be removed."""
import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.distributed import GradientBuckets, average_gradients
from tinygrad_yolo.distributed.communicator import Communicator, Finished
from tinygrad_yolo.distributed.gradients import split_by_dtype


class TwinRanks(Communicator):
    """Rank 0 of 2 whose twin holds the same arrays; records the sizes it sums, in order."""
    size = 2

    def __init__(self):
        self.sums = []

    def allreduce_(self, array):
        self.sums.append(array.size)
        array *= 2
        return array

    def start_allreduce_(self, array):
        self.allreduce_(array)
        return Finished()


def model_with_an_unused_layer():
    tg.utils.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Linear(2, 2))
    x = tg.Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    loss = (model[2](model[1](model[0](x))) ** 2).mean()  # model[3] unused
    return model, loss


def test_the_flat_buffer_averages_and_zeroes_what_got_no_gradient():
    model, loss = model_with_an_unused_layer()
    loss.backward()
    own = [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]
    comm = TwinRanks()
    buffers = average_gradients(model.parameters(), comm)
    assert comm.sums == [sum(p.size for p in model.parameters())]
    for p, g in zip(model.parameters(), own):
        np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape) if g is None else g)
    assert average_gradients(model.parameters(), comm, buffers) is buffers  # reused


def test_buckets_start_in_index_order_and_finish_what_the_backward_left():
    model, loss = model_with_an_unused_layer()
    comm = TwinRanks()
    buckets = GradientBuckets(model.parameters(), comm, bucket_bytes=40)
    first = buckets.buckets[0].params
    assert first[0] is model[3].bias  # the last layer first: the backward reaches it first
    loss.backward()
    assert comm.sums == []  # the unused last layer's bucket never fills, so none may start
    buckets.finish()
    assert comm.sums == [b.array.size for b in buckets.buckets]
    np.testing.assert_array_equal(model[3].weight.grad.numpy(), np.zeros((2, 2)))
    buckets.remove()
    model.zero_grad()
    (model[0].weight.sum()).backward()
    assert len(comm.sums) == len(buckets.buckets)  # no hook left


def test_runs_split_at_a_dtype_change_and_at_the_size_limit():
    params = [tg.Tensor(np.zeros(n, dtype=d), requires_grad=True)
              for n, d in ((4, np.float32), (4, np.float32), (2, np.float64), (10, np.float64))]
    assert [len(r) for r in split_by_dtype(params)] == [2, 2]
    assert [len(r) for r in split_by_dtype(params, bucket_bytes=20)] == [1, 1, 1, 1]
    assert [len(r) for r in split_by_dtype(params, bucket_bytes=32)] == [2, 1, 1]
