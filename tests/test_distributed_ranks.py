"""Data-parallel training on 2 MPI ranks (the issue's tests 1 and 2).

1. Plumbing, bit for bit: 2 ranks end exactly where 2 replicas simulated in one process end
   (the same sums in the same order), for float32 and float64, with and without batch norm,
   through one flat buffer and through buckets; both ranks hold identical models.
2. The math: without batch-coupled layers, or with sync batch norm, 2 ranks x b images end where
   1 process x 2b ends, within float64 rounding (1e-12 relative).
And the per-step agreement: a stop asked on one rank, a NaN on another, a model that differs.

Every rank job is one ``mpiexec -n 2 python -m mpi4py`` subprocess with a timeout.
"""
import itertools
import json

import numpy as np
import pytest

import distributed_ranks as ranks

REASON = ranks.skip_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

PLUMBING = [f"{d}-{bn}-{ex}-adamw" for d, bn, ex in itertools.product(
    ("float32", "float64"), ("none", "replica"), ("flat", "buckets"))]
MATH = ["float64-none-flat-sgd", "float64-sync-flat-sgd", "float64-sync-buckets-sgd"]


@pytest.fixture(scope="module")
def rank_states(tmp_path_factory):
    """Every scenario's final state on each rank, from one mpiexec job."""
    out = tmp_path_factory.mktemp("ranks")
    ranks.run_ranks(out, PLUMBING + MATH + ["agreement"])

    def load(scenario):
        if scenario == "agreement":
            return [json.loads((out / f"agreement.rank{r}.json").read_text())
                    for r in range(ranks.RANKS)]
        return [dict(np.load(out / f"{scenario}.rank{r}.npz")) for r in range(ranks.RANKS)]
    return load


def assert_same_keys(a, b):
    assert sorted(a) == sorted(b)
    assert any(k.startswith("opt.") for k in a)


@pytest.mark.parametrize("scenario", PLUMBING)
def test_two_ranks_equal_two_replicas_simulated_in_one_process(rank_states, scenario):
    states = rank_states(scenario)
    cfg = ranks.parse(scenario)
    simulated = ranks.simulate_replicas(cfg["dtype"], cfg["bn"], cfg["optimizer"])
    for rank, (got, want) in enumerate(zip(states, simulated)):
        assert_same_keys(got, want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"rank {rank}: {key}")
    for key in states[0]:
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=f"differ: {key}")


def relative_error(got, want):
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


@pytest.mark.parametrize("scenario", MATH)
def test_two_ranks_of_b_equal_one_process_of_2b(rank_states, scenario):
    states = rank_states(scenario)
    cfg = ranks.parse(scenario)
    one = ranks.train_one_process(cfg["dtype"], cfg["bn"], cfg["optimizer"])
    assert_same_keys(states[0], one)
    for key, want in one.items():
        if want.dtype.kind != "f":
            np.testing.assert_array_equal(states[0][key], want, err_msg=key)
            continue
        for rank in range(ranks.RANKS):
            assert relative_error(states[rank][key], want) <= 1e-12, (rank, key)
        np.testing.assert_array_equal(states[0][key], states[1][key], err_msg=f"differ: {key}")


def test_the_ranks_agree_on_stops_non_finite_losses_and_different_models(rank_states):
    first, second = rank_states("agreement")
    assert first == second  # every rank decides alike
    assert first["stop"] is True and first["bad_rank"] == 1  # rank 0's stop, rank 1's NaN
    assert first["parts"] == {"box": 1.5}  # means over the ranks
    assert first["counts"] == {"objects": 7}  # sums over the ranks
    assert first["any_true"] is True and first["any_false"] is False
    assert first["refused"].startswith("the model on rank(s) 1 differs from rank 0's")
