"""The collectives over MPI (mpi4py): NumPy arrays go through MPI itself, CuPy arrays through
NCCL (nccl.py), whose communicator is made the first time a CuPy array is exchanged.

MPI needs the ranks to start their collectives in the same order, background ones included;
the callers keep that order fixed (gradients.py launches its buckets by index).
"""
import os
import sys

from ..backend import is_cuda_array
from .communicator import Communicator, Finished


class _Pending:
    """A started MPI collective."""

    def __init__(self, request):
        self.request = request

    def wait(self):
        self.request.Wait()


class MPICommunicator(Communicator):
    def __init__(self, comm=None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_rank = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        self._nccl = None

    def nccl(self):
        """The NCCL communicator of these ranks (made on first use, by every rank together)."""
        if self._nccl is None:
            from .nccl import NcclCommunicator
            self._nccl = NcclCommunicator(self.comm)
        return self._nccl

    def allreduce_(self, array):
        if is_cuda_array(array):
            return self.nccl().allreduce_(array)
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def start_allreduce_(self, array):
        if is_cuda_array(array):  # queued on the stream: ordered before any later use of array
            self.nccl().allreduce_(array)
            return Finished()
        return _Pending(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM))

    def broadcast_(self, array, root=0):
        if is_cuda_array(array):
            return self.nccl().broadcast_(array, root)
        self.comm.Bcast(array, root=root)
        return array

    def broadcast_object(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def allgather_object(self, obj):
        return self.comm.allgather(obj)

    def any(self, flag):
        return bool(self.comm.allreduce(bool(flag), op=self.MPI.LOR))

    def barrier(self):
        self.comm.Barrier()

    def leave(self, code):
        """End this rank now with ``code``, MPI finalized (the job's status is the ranks' worst)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.MPI.Finalize()
        os._exit(code)
