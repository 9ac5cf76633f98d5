"""NCCL through CuPy for CuPy arrays, bootstrapped the ChainerMN way: rank 0's
``get_unique_id()`` is broadcast over MPI, then every rank joins the NCCL communicator.

Calls are queued on the current CUDA stream, so they are ordered with the kernels that made
and that use the array, and nothing waits on the host.
"""
from ..backend import cupy_module


def nccl_dtype(nccl, dtype):
    """NCCL's name for a NumPy dtype; errors name the dtypes NCCL sums."""
    names = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
             "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8"}
    name = names.get(str(dtype))
    if name is None:
        raise TypeError(f"NCCL cannot exchange {dtype} arrays (it takes {', '.join(names)})")
    return getattr(nccl, name)


def use_local_gpu(local_rank):
    """One GPU per rank of a machine, by its local rank."""
    cp = cupy_module()
    count = cp.cuda.runtime.getDeviceCount()
    cp.cuda.Device(local_rank % count).use()


class NcclCommunicator:
    """NCCL's communicator over the ranks of the MPI communicator ``mpi_comm`` (mpi4py's)."""

    def __init__(self, mpi_comm):
        cp = cupy_module()
        self.cp, self.nccl = cp, cp.cuda.nccl
        uid = self.nccl.get_unique_id() if mpi_comm.Get_rank() == 0 else None
        uid = mpi_comm.bcast(uid, root=0)
        self.size, self.rank = mpi_comm.Get_size(), mpi_comm.Get_rank()
        self.comm = self.nccl.NcclCommunicator(self.size, uid, self.rank)

    def _stream(self):
        return self.cp.cuda.get_current_stream().ptr

    def allreduce_(self, array):
        """array <- the sum over ranks, in place (``array`` must be C-contiguous)."""
        if not array.flags["C_CONTIGUOUS"]:
            raise ValueError("NCCL allreduce needs a C-contiguous array")
        ptr = array.data.ptr
        self.comm.allReduce(ptr, ptr, array.size, nccl_dtype(self.nccl, array.dtype),
                            self.nccl.NCCL_SUM, self._stream())
        return array

    def broadcast_(self, array, root=0):
        if not array.flags["C_CONTIGUOUS"]:
            raise ValueError("NCCL broadcast needs a C-contiguous array")
        self.comm.bcast(array.data.ptr, array.size, nccl_dtype(self.nccl, array.dtype), root,
                        self._stream())
        return array
