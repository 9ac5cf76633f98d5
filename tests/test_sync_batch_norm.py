"""Sync batch norm's pieces in one process: Chan et al.'s combination of per-group (count, mean,
M2) against the two-pass statistics of the union, where E[x²] - mean² would fail; and at one rank
SyncBatchNorm is BatchNorm (values, gradients, running statistics). Two ranks against one
process: tests/test_distributed_ranks.py."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn
from tinygrad_yolo.distributed import (SingleProcess, SyncBatchNorm, combine_statistics,
                                       use_sync_batch_norm)
from tinygrad_yolo.distributed.sync_bn import SyncBatchNorm2d
from tinygrad_yolo.ops.norm import BatchNorm


@pytest.mark.parametrize("sizes", [(5, 7), (1, 1, 30), (64, 3, 11, 2)])
def test_chan_combination_is_the_two_pass_statistics_of_the_union(sizes):
    rng = np.random.default_rng(len(sizes))
    groups = [1e6 + rng.standard_normal((n, 3)) * 1e-2 for n in sizes]  # big mean, small spread
    counts = [float(len(g)) for g in groups]
    means = [g.mean(axis=0) for g in groups]
    m2s = [((g - g.mean(axis=0)) ** 2).sum(axis=0) for g in groups]
    n, mean, m2 = combine_statistics(counts, means, m2s)
    union = np.concatenate(groups)
    want_var = ((union - union.mean(axis=0)) ** 2).mean(axis=0)
    assert n == len(union)
    np.testing.assert_allclose(mean, union.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(m2 / n, want_var, rtol=1e-7)  # the inputs hold 1e-8 of the spread
    naive = (union ** 2).mean(axis=0) - union.mean(axis=0) ** 2  # what sync BN must never do
    assert np.max(np.abs(naive - want_var) / want_var) > 1e-3


def test_at_one_rank_sync_batch_norm_is_batch_norm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    w, b, g = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((4, 3, 5, 5))
    outs = []
    for op, extra in ((BatchNorm, dict(training=True)),
                      (SyncBatchNorm, dict(comm=SingleProcess()))):
        xs = [tg.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
        stats = [np.zeros(3), np.ones(3)]
        y = op.apply(*xs, running_mean=stats[0], running_var=stats[1], momentum=0.1, eps=1e-5,
                     **extra)
        y.backward(tg.Tensor(g))
        outs.append([y.numpy()] + [t.grad.numpy() for t in xs] + stats)
    for got, want in zip(*outs):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_use_sync_batch_norm_keeps_the_parameters_and_the_state_dict():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.BatchNorm2d(4, affine=False))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    use_sync_batch_norm(model, SingleProcess())
    assert type(model[1]) is SyncBatchNorm2d and type(model[3]) is nn.BatchNorm2d
    assert list(model.parameters()) == params
    assert sorted(model.state_dict()) == sorted(before)
    x = tg.Tensor(np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32))
    model(x)  # at one rank, BatchNorm2d's own forward
    assert int(model[1].num_batches_tracked.item()) == 1
