"""What the multi-rank tests run: small training runs as ranks under mpiexec, and the same runs
in one process for reference. Run as a rank: ``mpiexec -n 2 python -m mpi4py
tests/distributed_ranks.py OUT SCENARIO...``: rank r writes OUT/<scenario>.rank<r>.npz.

A scenario is "<dtype>-<bn>-<exchange>-<optimizer>": dtype float32 | float64; bn none |
replica (per-rank statistics, running statistics averaged) | sync; exchange flat | buckets;
optimizer adamw | sgd.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo import nn, optim
from tinygrad_yolo import distributed as dist
from tinygrad_yolo.utils import seed

STEPS, SHARE, RANKS = 3, 3, 2  # steps; images per rank; ranks
RANK_TIMEOUT = 240  # seconds for one mpiexec job: a hang fails the test instead of eating CI's time


def skip_reason():
    """Why multi-rank tests can't run here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return 'mpi4py is not installed (pip install ".[dist]" installs it and an MPI runtime)'
    from tinygrad_yolo.distributed.launch import find_mpiexec
    if find_mpiexec() is None:
        return 'no mpiexec on the PATH (pip install ".[dist]" brings the mpich wheel\'s)'
    return None


def run_ranks(out, scenarios, ranks=RANKS, script=__file__, timeout=RANK_TIMEOUT):
    """Run ``script out scenarios...`` as ``ranks`` MPI ranks; raise with their output if any
    fails."""
    from tinygrad_yolo.distributed.launch import find_mpiexec
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [find_mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(script), str(out),
           *scenarios]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n"
                             f"{done.stderr}")
    return done


def parse(scenario):
    dtype, bn, exchange, optimizer = scenario.split("-")
    return dict(dtype=dtype, bn=bn, exchange=exchange, optimizer=optimizer)


def build(dtype, bn, optimizer):
    """The same small model (and optimizer) on every rank and replica."""
    seed(7)
    # no bias before batch norm (as the ResNets): its gradient is zero, so only rounding noise
    layers = [nn.Conv2d(3, 4, 3, padding=1, bias=bn == "none")]
    if bn != "none":
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.Conv2d(4, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1)]
    model = nn.Sequential(*layers)
    if dtype == "float64":
        model.double()
    model.train()
    if optimizer == "adamw":
        opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    else:
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, opt


def global_batches(dtype, ranks=RANKS):
    """STEPS global batches of ranks * SHARE images (inputs, targets)."""
    rng = np.random.default_rng(11)
    n = ranks * SHARE
    return [(rng.standard_normal((n, 3, 6, 6)).astype(dtype) + 1.5,
             rng.standard_normal((n, 2, 4, 4)).astype(dtype)) for _ in range(STEPS)]


def loss_of(model, x, t):
    """A per-image mean, as the YOLO loss is."""
    d = model(tg.Tensor(x)) - tg.Tensor(t)
    return (d * d).mean()


def state_of(model, opt):
    """Parameters, buffers and optimizer state as flat name -> array."""
    out = {f"model.{k}": np.asarray(v) for k, v in model.state_dict().items()}
    for index, slots in opt.state_dict()["state"].items():
        for name, value in slots.items():
            out[f"opt.{index}.{name}"] = np.asarray(value)
    return out


def train_rank(comm, dtype, bn, exchange, optimizer):
    """This rank's STEPS steps on its shares of the global batches."""
    model, opt = build(dtype, bn, optimizer)
    # small buckets: several, started during the backward
    parallel = dist.DataParallel(model, comm, sync_bn=bn == "sync", buckets=exchange == "buckets",
                                 bucket_bytes=400)
    for x, t in global_batches(dtype, comm.size):
        part = slice(comm.rank * SHARE, (comm.rank + 1) * SHARE)
        loss = loss_of(model, x[part], t[part])
        opt.zero_grad()
        loss.backward()
        parallel.exchange()
        opt.step()
    return state_of(model, opt)


def simulate_replicas(dtype, bn, optimizer, ranks=RANKS):
    """RANKS replicas in one process, exchanging exactly what the ranks exchange: gradients summed
    in rank order then divided by RANKS, running statistics likewise."""
    replicas = [build(dtype, bn, optimizer) for _ in range(ranks)]
    for x, t in global_batches(dtype, ranks):
        for r, (model, opt) in enumerate(replicas):
            part = slice(r * SHARE, (r + 1) * SHARE)
            opt.zero_grad()
            loss_of(model, x[part], t[part]).backward()
        per_param = zip(*[list(m.parameters()) for m, _ in replicas])
        for params in per_param:
            mean = sum_in_order([p.grad.data for p in params]) / ranks
            for p in params:
                p.grad.data[...] = mean
        if bn == "replica":
            for buffers in zip(*[list(m.buffers()) for m, _ in replicas]):
                if buffers[0].data.dtype.kind == "f":
                    mean = sum_in_order([b.data for b in buffers]) / ranks
                    for b in buffers:
                        b.data[...] = mean
        for _, opt in replicas:
            opt.step()
    return [state_of(m, o) for m, o in replicas]


def sum_in_order(arrays):
    total = arrays[0].copy()
    for a in arrays[1:]:
        total += a
    return total


def train_one_process(dtype, bn, optimizer, ranks=RANKS):
    """One process on the whole global batches (batch norm over all of them)."""
    model, opt = build(dtype, "none" if bn == "none" else "replica", optimizer)
    for x, t in global_batches(dtype, ranks):
        opt.zero_grad()
        loss_of(model, x, t).backward()
        opt.step()
    return state_of(model, opt)


def agreements(comm):
    """What the ranks agree on when rank 1's loss is NaN and only rank 0 was asked to stop, and
    whether a model that differs on rank 1 is refused on every rank."""
    loss = float("nan") if comm.rank == 1 else 2.0 + comm.rank
    seen = dist.agree_step(comm, loss, {"box": 1.0 + comm.rank}, stop=comm.rank == 0,
                           counts={"objects": 3 + comm.rank})
    model, _ = build("float32", "replica", "sgd")
    dist.check_same_model(model, comm)  # equal: passes
    if comm.rank == 1:
        next(model.parameters()).data[0] += 1
    try:
        dist.check_same_model(model, comm)
        refused = ""
    except dist.ModelsDiffer as e:
        refused = str(e)
    return dict(stop=seen.stop, bad_rank=seen.bad_rank, parts=seen.parts, counts=seen.counts,
                refused=refused,
                any_true=comm.any(comm.rank == 1), any_false=comm.any(False))


def main(out, scenarios):
    comm = dist.world()
    for scenario in scenarios:
        if scenario == "agreement":
            (Path(out) / f"agreement.rank{comm.rank}.json").write_text(json.dumps(agreements(comm)))
            continue
        state = train_rank(comm, **parse(scenario))
        np.savez(Path(out) / f"{scenario}.rank{comm.rank}.npz", **state)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
