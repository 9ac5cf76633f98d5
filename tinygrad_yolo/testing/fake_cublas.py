"""cupy.cuda.cublas for fake_cupy: the GEMM entry points, emulated with NumPy on the memory behind
the raw pointers, with cuBLAS's semantics -- column-major matrices, op(A) = A or Aᵀ by the
transpose flag, leading dimensions lda/ldb/ldc, batch strides in elements, alpha and beta read
from host pointers (CUBLAS_POINTER_MODE_HOST), C not read when beta == 0 -- and its argument
checks (lda >= max(1, rows of the stored A), ...; a violation is CUBLAS_STATUS_INVALID_VALUE).
Every matrix must lie inside a live device allocation."""
import ctypes

import numpy as np

from .counting import counter

CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C = 0, 1, 2
CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE = 0, 1
_pointer_mode = {}


class CUBLASError(RuntimeError):
    pass


def getPointerMode(handle):
    return _pointer_mode.get(handle, CUBLAS_POINTER_MODE_HOST)


def setPointerMode(handle, mode):
    _pointer_mode[handle] = mode


def _matrix(what, ptr, dtype, rows, cols, ld, stride, batch):
    """The (batch, rows, cols) view of a column-major matrix stored at ptr."""
    item = np.dtype(dtype).itemsize
    if ld < max(1, rows):
        raise CUBLASError(f"CUBLAS_STATUS_INVALID_VALUE: {what}: leading dimension {ld} < "
                          f"{max(1, rows)} rows")
    if rows == 0 or cols == 0 or batch == 0:
        return np.zeros((batch, rows, cols), dtype)
    # elements, from the first to one past the last
    extent = (batch - 1) * stride + (cols - 1) * ld + rows
    counter.check_extent(what, ptr, extent * item)
    buf = np.frombuffer((ctypes.c_char * (extent * item)).from_address(ptr), dtype=dtype)
    return np.lib.stride_tricks.as_strided(buf, (batch, rows, cols),
                                           (stride * item, item, ld * item))


def _gemm(name, dtype, handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
          beta, C, ldc, strideC, batch, operands=lambda a: a):
    if getPointerMode(handle) != CUBLAS_POINTER_MODE_HOST:
        raise CUBLASError("fake cublas: only CUBLAS_POINTER_MODE_HOST is emulated")
    if min(m, n, k, batch) < 0 or transa not in (0, 1) or transb not in (0, 1):
        raise CUBLASError(f"CUBLAS_STATUS_INVALID_VALUE: {name}(m={m}, n={n}, k={k}, "
                          f"batch={batch}, transa={transa}, transb={transb})")
    ctype = ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double
    a_, b_ = ctype.from_address(alpha).value, ctype.from_address(beta).value
    opA = _matrix(f"{name} A", A, dtype, *((m, k) if transa == CUBLAS_OP_N else (k, m)), lda,
                  strideA, batch)
    opB = _matrix(f"{name} B", B, dtype, *((k, n) if transb == CUBLAS_OP_N else (n, k)), ldb,
                  strideB, batch)
    opA, opB = operands(opA), operands(opB)  # the compute type's rounding of the inputs
    if transa == CUBLAS_OP_T:
        opA = opA.transpose(0, 2, 1)
    if transb == CUBLAS_OP_T:
        opB = opB.transpose(0, 2, 1)
    out = _matrix(f"{name} C", C, dtype, m, n, ldc, strideC, batch)
    if out.size and (strideC < m + (n - 1) * ldc) and batch > 1:
        raise CUBLASError(f"{name}: the batches of C overlap (strideC {strideC})")
    if out.size:
        acc = np.zeros(out.shape)
        if k:
            acc = a_ * np.matmul(opA.astype(np.float64), opB.astype(np.float64))
        if b_ != 0:  # beta == 0: C is not read (it may hold NaN)
            acc = acc + b_ * out.astype(np.float64)
        out[...] = acc
    counter.call("gemm", name)


def sgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
                        beta, C, ldc, strideC, batchCount):
    _gemm("sgemmStridedBatched", np.float32, handle, transa, transb, m, n, k, alpha, A, lda,
          strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount)


def dgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
                        beta, C, ldc, strideC, batchCount):
    _gemm("dgemmStridedBatched", np.float64, handle, transa, transb, m, n, k, alpha, A, lda,
          strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount)


def sgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    _gemm("sgemm", np.float32, handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta,
          C, ldc, 0, 1)


def dgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    _gemm("dgemm", np.float64, handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta,
          C, ldc, 0, 1)


CUDA_R_32F = 0
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32 = 68, 77
CUBLAS_GEMM_DEFAULT = -1


def round_to_tf32(a):
    """float32 values rounded to TF32's 10-bit mantissa (nearest, ties to even), as tensor cores
    read them in CUBLAS_COMPUTE_32F_FAST_TF32."""
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32)
    lsb = (bits >> np.uint32(13)) & np.uint32(1)
    rounded = ((bits + np.uint32(0xFFF) + lsb) & np.uint32(0xFFFFE000)).view(np.float32)
    return np.where(np.isnan(a), a, rounded)


def gemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype,
                         ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType,
                         algo):
    """float32 in and out only (what kernels/gemm.py passes), with the 32F or 32F_FAST_TF32
    compute type; alpha and beta are float32 host scalars for both."""
    if (Atype, Btype, Ctype) != (CUDA_R_32F,) * 3 or algo != CUBLAS_GEMM_DEFAULT:
        raise CUBLASError(f"fake cublas: gemmStridedBatchedEx emulates float32 operands with the "
                          f"default algorithm, got types {(Atype, Btype, Ctype)}, algo {algo}")
    if computeType not in (CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32):
        raise CUBLASError(f"CUBLAS_STATUS_NOT_SUPPORTED: compute type {computeType}")
    tf32 = computeType == CUBLAS_COMPUTE_32F_FAST_TF32
    _gemm("gemmStridedBatchedEx", np.float32, handle, transa, transb, m, n, k, alpha, A, lda,
          strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount,
          operands=round_to_tf32 if tf32 else (lambda a: a))
