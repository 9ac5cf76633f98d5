"""``train --nproc N``'s command line, and the one-line errors when what it needs is missing.
At one process every collective is a no-op and mpi4py is never imported."""
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_yolo.distributed import SingleProcess, agree_step, launch
from tinygrad_yolo.distributed.communicator import launched_by_mpiexec


def test_the_command_starts_the_cli_under_mpi4py_without_nproc():
    argv = ["train", "--nproc", "3", "--data", "d", "--nproc=3", "--sync-bn"]
    cmd = launch.mpiexec_command(3, argv, mpiexec="/x/mpiexec")
    assert cmd == ["/x/mpiexec", "-n", "3", sys.executable, "-m", "mpi4py", "-m",
                   "tinygrad_yolo.cli", "train", "--data", "d", "--sync-bn"]


def test_missing_mpi4py_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(launch.LaunchError) as e:
        launch.mpiexec_command(2, ["train"])
    assert str(e.value) == ('--nproc 2 needs mpi4py and an MPI runtime: '
                            'pip install "tinygrad_yolo[dist]"')


def test_missing_mpiexec_is_one_line(monkeypatch):
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(launch, "find_mpiexec", lambda: None)
    with pytest.raises(launch.LaunchError, match=r"^--nproc 2 needs an `mpiexec` on the PATH"):
        launch.mpiexec_command(2, ["train"])
    with pytest.raises(launch.LaunchError, match="use 2 or more processes"):
        launch.mpiexec_command(1, ["train"], mpiexec="/x/mpiexec")


def test_one_process_is_a_no_op_and_imports_no_mpi():
    code = ("import sys; from tinygrad_yolo.distributed import world, SingleProcess; "
            "assert isinstance(world(), SingleProcess) and world() is world(); "
            "assert 'mpi4py' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    comm = SingleProcess()
    a = np.arange(3.0)
    assert comm.allreduce_(a) is a and comm.broadcast_(a) is a and list(a) == [0, 1, 2]
    comm.start_allreduce_(a).wait()
    assert comm.allgather_object({"x": 1}) == [{"x": 1}] and comm.broadcast_object(5) == 5
    assert comm.any(True) and not comm.any(0) and comm.is_main


def test_the_environment_of_mpiexec_is_recognised(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_mpiexec()
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not launched_by_mpiexec()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert launched_by_mpiexec()


def test_one_process_agreement_checks_its_own_loss():
    seen = agree_step(SingleProcess(), float("inf"), {"box": 2.0}, stop=False)
    assert (seen.bad_rank, seen.bad_loss, seen.stop) == (0, float("inf"), False)
    assert seen.parts == {"box": 2.0}
    assert agree_step(SingleProcess(), 1.5).bad_rank is None


def test_sigterm_is_passed_on_to_mpiexec(tmp_path):
    """The launching process forwards SIGTERM to its child and returns the child's status."""
    child = ("import signal, sys, time; "
             "signal.signal(signal.SIGTERM, lambda s, f: sys.exit(43)); "
             "print('ready', flush=True); time.sleep(60)")
    parent = ("import sys; from tinygrad_yolo.distributed.launch import run_forwarding_sigterm; "
              f"sys.exit(run_forwarding_sigterm([sys.executable, '-c', {child!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()
    assert proc.wait(timeout=60) == 43


def test_the_ranks_share_the_cores_unless_the_user_set_a_thread_count(monkeypatch):
    monkeypatch.setattr(launch.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    env = launch.rank_environment(2, {"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "4" and env["PATH"] == "/bin"
    assert launch.rank_environment(16, {})["OMP_NUM_THREADS"] == "1"  # never 0
    assert launch.rank_environment(2, {"OMP_NUM_THREADS": "3"}) == {"OMP_NUM_THREADS": "3"}
