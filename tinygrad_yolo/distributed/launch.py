"""``train --nproc N``: the mpiexec command that starts N ranks of the same command.

    mpiexec -n N python -m mpi4py -m tinygrad_yolo.cli train ... (without --nproc)

``-m mpi4py`` turns an exception on one rank into an abort of the whole job (without it the
other ranks would wait forever in their next collective). Everything is checked before any data
is read: a missing mpi4py or mpiexec is one line naming what to install.
"""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

INSTALL_HINT = 'pip install "tinygrad_yolo[dist]"'


class LaunchError(RuntimeError):
    """The ranks can't be started; the message says what to install."""


def find_mpiexec():
    """mpiexec beside this Python (a virtual environment's, from the mpich wheel), else on the
    PATH; None when there is none."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


def check_installed(nproc):
    """The mpiexec to use; LaunchError (one line) when mpi4py or mpiexec is missing."""
    if importlib.util.find_spec("mpi4py") is None:
        raise LaunchError(f"--nproc {nproc} needs mpi4py and an MPI runtime: {INSTALL_HINT}")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise LaunchError(f"--nproc {nproc} needs an `mpiexec` on the PATH: {INSTALL_HINT} "
                          f"(the mpich wheel brings one) or install your system's MPI")
    return mpiexec


def without_nproc(argv):
    """``argv`` without its --nproc option (``--nproc N`` or ``--nproc=N``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def runs_as_root_under_open_mpi(mpiexec):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in version or "OpenRTE" in version


def mpiexec_command(nproc, argv, mpiexec=None):
    """The command line that runs ``tinygrad-yolo <argv>`` as ``nproc`` ranks."""
    if nproc < 2:
        raise LaunchError(f"--nproc {nproc}: use 2 or more processes (or leave --nproc out)")
    mpiexec = mpiexec or check_installed(nproc)
    extra = ["--allow-run-as-root"] if runs_as_root_under_open_mpi(mpiexec) else []
    return [mpiexec, *extra, "-n", str(nproc), sys.executable, "-m", "mpi4py", "-m",
            "tinygrad_yolo.cli", *without_nproc(argv)]


def run_ranks(nproc, argv):
    """Run ``tinygrad-yolo <argv>`` as ``nproc`` ranks and return the job's exit status.

    A terminal's Ctrl-C reaches mpiexec, which passes it on to every rank once (the ranks live
    in process groups of their own); this process only waits. A SIGTERM sent to this process is
    passed on to mpiexec, which passes it on to the ranks: each stops at the same step boundary.
    """
    cmd = mpiexec_command(nproc, argv)
    return run_forwarding_sigterm(cmd, rank_environment(nproc))


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def rank_environment(nproc, environ=None):
    """The ranks' environment: the machine's cores shared out, so that N ranks don't each start
    a BLAS thread per core and fight over them; a thread count the user set stays."""
    env = dict(os.environ if environ is None else environ)
    if not any(name in env for name in THREAD_VARIABLES):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        for name in THREAD_VARIABLES:
            env[name] = str(max(1, (cores or 1) // nproc))
    return env


def run_forwarding_sigterm(cmd, env=None):
    """Run ``cmd``, passing a SIGTERM on to it and ignoring Ctrl-C (the child gets its own)."""
    child = subprocess.Popen(cmd, env=env)
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, lambda s, f: child.send_signal(s))}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
