"""`tinygrad-yolo train` on 2 MPI ranks, end to end on a tiny synthetic set: one run folder that
rank 0 alone writes, a SIGTERM that stops both ranks at one step boundary and resumes bit for
bit, a NaN or an exception on one rank that ends the whole job, errors printed once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinygrad_yolo as tg
from distributed_ranks import RANK_TIMEOUT, skip_reason
from test_train_cli import TINY, _assert_same_state, _rows, _train_state, voc  # noqa: F401

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))
RANK_SCRIPT = Path(__file__).with_name("distributed_train_rank.py")


def cli(*args, timeout=RANK_TIMEOUT):
    """``tinygrad-yolo *args`` in a fresh process (``--nproc`` starts mpiexec from there)."""
    return subprocess.run([sys.executable, "-m", "tinygrad_yolo.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def ranks_with_fault(fault, *args):
    """2 ranks of `tinygrad-yolo *args`, rank 1 with ``fault`` (distributed_train_rank.py)."""
    from tinygrad_yolo.distributed.launch import find_mpiexec
    cmd = [find_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(RANK_SCRIPT), fault,
           *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RANK_TIMEOUT, env=env)


def common(voc, out, *more):
    return ["train", "--data", str(voc), *TINY, "--eval-max-images", "4", "--seed", "3",
            "--out", str(out), *more]


def test_two_ranks_write_one_run_folder_and_print_once(voc, tmp_path):
    done = cli(*common(voc, tmp_path / "runs" / "dp", "--steps", "4"), "--nproc", "2")
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path / "runs") == ["dp"]  # rank 1 claimed no folder of its own
    one = cli(*common(voc, tmp_path / "one", "--steps", "4"))
    assert one.returncode == 0, one.stderr
    assert sorted(os.listdir(tmp_path / "runs" / "dp")) == sorted(os.listdir(tmp_path / "one"))
    out = done.stdout.splitlines()
    assert sum(line.startswith('{"map50"') for line in out) == 1  # one final line: rank 0's
    assert sum(line.startswith("processes") for line in out) == 1
    assert "2 ranks, 2 images each per step of 4" in done.stdout
    rows = _rows(tmp_path / "runs" / "dp")
    assert [r["event"] for r in rows].count("start") == 1 and rows[0]["processes"] == 2
    steps = [r for r in rows if r["event"] == "step"]
    assert [r["step"] for r in steps] == [1]  # written once, by rank 0 (log every 10 steps)
    single = tg.load(tmp_path / "one" / "last.npz")["train"]["progress"]
    both = tg.load(tmp_path / "runs" / "dp" / "last.npz")["train"]["progress"]
    assert both["objects"] == single["objects"] > 0  # the objects both ranks trained on


def test_sigterm_stops_both_ranks_at_one_step_and_resume_is_bit_exact(voc, tmp_path):
    straight = cli(*common(voc, tmp_path / "straight", "--epochs", "6"), "--nproc", "2")
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "stopped"
    child = subprocess.Popen([sys.executable, "-m", "tinygrad_yolo.cli",
                              *common(voc, out, "--epochs", "6"), "--nproc", "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + RANK_TIMEOUT
    while not (out / "last.npz").exists():  # the first checkpoint, at the end of epoch 1
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()[1]
        time.sleep(0.005)
    child.send_signal(signal.SIGTERM)  # to the launcher, which passes it on through mpiexec
    err = child.communicate(timeout=RANK_TIMEOUT)[1]
    assert child.returncode == 143, err
    assert err.count("continue with: tinygrad-yolo train --resume") == 1, err
    stopped_at = tg.load(out / "last.npz")["train"]["progress"]["step"]
    assert 2 <= stopped_at < 12
    resumed = cli("train", "--resume", "--out", str(out), "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_state(_train_state(tmp_path / "straight" / "last.npz"),
                       _train_state(out / "last.npz"))
    events = [r["event"] for r in _rows(out)]
    assert events.count("stopped") == 1 and events.count("resume") == 1


def test_a_nan_on_one_rank_stops_both_at_the_same_step_with_one_line(voc, tmp_path):
    done = ranks_with_fault("nan-on-rank-1", *common(voc, tmp_path / "run", "--steps", "6"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "the loss became nan at step 3 on rank 1" in lines[0], done.stderr
    rows = _rows(tmp_path / "run")
    assert max(r["step"] for r in rows if r["event"] == "step") <= 2  # no step 3 was logged
    assert "train" in tg.load(tmp_path / "run" / "last.npz")  # the epoch-1 checkpoint stands


def test_an_exception_on_one_rank_ends_the_job(voc, tmp_path):
    done = ranks_with_fault("raise-on-rank-1", *common(voc, tmp_path / "run", "--steps", "6"))
    assert done.returncode != 0
    assert "InjectedFault: injected on rank 1" in done.stderr


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "5", "--nproc", "2"],
     "--batch-size 5 does not split over 2 processes: use a multiple of 2"),
    (["--nproc", "0"], "--nproc must be 1 or more, got 0"),
])
def test_bad_nproc_options_are_one_line_before_any_rank_starts(tmp_path, args, needle):
    done = cli("train", "--out", str(tmp_path / "run"), *args)
    assert done.returncode == 2 and done.stderr.strip() == f"tinygrad-yolo train: error: {needle}"
    assert not (tmp_path / "run").exists()


def test_a_data_error_seen_by_every_rank_is_printed_once(tmp_path):
    (tmp_path / "empty").mkdir()  # a folder with no annotations: found when the ranks read it
    done = ranks_with_fault("none", "train", "--data", str(tmp_path / "empty"), "--out",
                            str(tmp_path / "run"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no annotations found" in lines[0], done.stderr
    assert not (tmp_path / "run").exists()


def test_a_rank_waits_for_rank_0s_run_folder_error(voc, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    done = ranks_with_fault("none", *common(voc, tmp_path / "file", "--steps", "2"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "exists and is not a folder" in lines[0], done.stderr
