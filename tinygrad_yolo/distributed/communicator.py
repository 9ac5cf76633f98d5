"""The collectives of data-parallel training, and the one-process communicator.

Every rank calls the same collectives in the same order; an array argument is changed in place
on every rank. ``world()`` gives the job's communicator: MPI's (mpi.py) when this process is one
of several ranks started by mpiexec, else ``SingleProcess``, whose every call is a no-op, so
that one process (or a machine without mpi4py) runs today's path untouched.
"""
import importlib.util
import os


class Communicator:
    """What the training loop asks of the ranks. ``rank``: this process's number, 0 .. size-1;
    ``local_rank``: its number among the ranks of its machine (which GPU it takes)."""
    rank = 0
    size = 1
    local_rank = 0

    def allreduce_(self, array):
        """array <- the element-wise sum of every rank's array."""
        raise NotImplementedError

    def start_allreduce_(self, array):
        """allreduce_ started in the background; returns a handle whose ``wait()`` finishes it."""
        raise NotImplementedError

    def broadcast_(self, array, root=0):
        """array <- rank ``root``'s array."""
        raise NotImplementedError

    def broadcast_object(self, obj, root=0):
        """Rank ``root``'s (small, picklable) object, on every rank."""
        raise NotImplementedError

    def allgather_object(self, obj):
        """[every rank's object] in rank order, on every rank."""
        raise NotImplementedError

    def any(self, flag):
        """True on every rank when ``flag`` is true on any rank."""
        return any(self.allgather_object(bool(flag)))

    def barrier(self):
        raise NotImplementedError

    def leave(self, code):
        """End this rank with exit status ``code`` (after a barrier: every rank leaves so)."""
        raise NotImplementedError

    @property
    def is_main(self):
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0


class Finished:
    """The handle of a collective that has already ended."""

    def wait(self):
        pass


class SingleProcess(Communicator):
    """One rank: nothing to exchange."""

    def allreduce_(self, array):
        return array

    def start_allreduce_(self, array):
        return Finished()

    def broadcast_(self, array, root=0):
        return array

    def broadcast_object(self, obj, root=0):
        return obj

    def allgather_object(self, obj):
        return [obj]

    def any(self, flag):
        return bool(flag)

    def barrier(self):
        pass


_WORLD = None


def launched_by_mpiexec():
    """Whether mpiexec started this process as one of several (its environment says so; MPICH
    sets PMI_SIZE, Open MPI OMPI_COMM_WORLD_SIZE)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        if int(os.environ.get(name, "1") or 1) > 1:
            return True
    return False


def world():
    """The job's communicator, made once: MPI's when this is one of several ranks, else
    ``SingleProcess`` (mpi4py is not even imported then, and its absence means one process)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = SingleProcess()
        if launched_by_mpiexec() and importlib.util.find_spec("mpi4py") is not None:
            from .mpi import MPICommunicator
            _WORLD = MPICommunicator()
    return _WORLD
