"""Everything CUDA-only, in one room; dispatch.py picks these for CUDA arrays (nothing here is
imported until then, and CuPy only through backend.py).

    conv.py    CudaConv2d, CudaPointwiseConv2d: im2col kernels and cuBLAS GEMMs, in chunks
    pool.py    CudaMaxPool2d: kernels/maxpool.cu
    norm.py    FusedBatchNorm: batch norm (+ residual) (+ ReLU) in three kernels each way
    optim.py   sgd_update, adam_update: one kernel per parameter

and ``tg.cuda``, PyTorch's ``torch.cuda`` questions, answered through backend.py:

    tg.cuda.is_available()   # CuPy importable and a GPU present (CuPy is imported on first ask)
    tg.cuda.device_count()   # 0 without one
    tg.cuda.synchronize()    # wait for queued GPU work (a no-op without CuPy)
    tg.cuda.set_tf32(True)   # float32 GEMMs on TF32 tensor cores (train --tf32); off by default
"""
from .. import backend


def is_available():
    return backend.cuda_available()


def device_count():
    if not backend.cuda_available():
        return 0
    return int(backend.cupy_module().cuda.runtime.getDeviceCount())


def synchronize():
    backend.synchronize()


def set_tf32(enabled=True):
    """float32 GEMMs (conv, matmul, linear on CUDA) with TF32 inputs and float32 sums, as
    PyTorch's torch.backends.cuda.matmul.allow_tf32; the CPU has no TF32 and ignores it."""
    backend.cuda_kernels("gemm").set_tf32(enabled)


def tf32_enabled():
    return backend.cuda_kernels("gemm").tf32_enabled()
