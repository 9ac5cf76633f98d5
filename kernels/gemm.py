"""Batched GEMMs straight through cuBLAS (cublas<S|D>gemmStridedBatched), without hidden work.

CuPy's ``matmul`` first makes every operand C-contiguous -- so ``matmul(g, col.transpose(0, 2, 1))``
copies the whole column matrix -- and for a batched product that broadcasts one operand (a weight
matrix against N column matrices) it builds pointer arrays with three small kernels and calls
gemmBatched. Here a transposed operand is a transpose flag, a broadcast one is a batch stride of 0,
and each product is one cuBLAS call. Installed as ``tinygrad_yolo.kernels.gemm``.

    batched_matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False)
                                             C[i] = op(A[i]) @ op(B[i])  (C[i] += ... accumulating)
    gemm_arguments(a_view, b_view, ...)      the cuBLAS call, as data (tested on the CPU)

Operands are 2-D (broadcast over the batch) or 3-D CuPy arrays whose last two axes are either
row-major or column-major with any leading dimension (a C-contiguous array, a slice of rows, or a
transposed view of either); anything else (negative or doubly strided) is copied first, which
``gemm_arguments`` reports. The result is C-contiguous (batch, M, N), float32 or float64.

Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ, so cuBLAS gets B's side as its first operand.
For an operand Y (rows x cols, row-major meaning) in memory with element strides (s0, s1):
  s1 == 1  the memory, read column-major, is Yᵀ with leading dimension s0: what cuBLAS needs, op N
  s0 == 1  the memory, read column-major, is Y with leading dimension s1: op T gives Yᵀ
"""
import collections

import numpy as np

from tinygrad_yolo.backend import cublas_module, cupy_module

CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUDA_R_32F = 0                                             # cudaDataType_t
CUBLAS_COMPUTE_32F_FAST_TF32 = 77                          # cublasComputeType_t
CUBLAS_GEMM_DEFAULT = -1
_tf32 = [False]  # set_tf32: float32 GEMMs on TF32 tensor cores (10-bit mantissa inputs)


def set_tf32(enabled):
    """float32 GEMMs through cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F_FAST_TF32 (inputs
    rounded to 10 mantissa bits, float32 sums: PyTorch's allow_tf32) when ``enabled``."""
    _tf32[0] = bool(enabled)


def tf32_enabled():
    return _tf32[0]

Operand = collections.namedtuple("Operand", "op ld stride offset_bytes copied")
GemmArgs = collections.namedtuple("GemmArgs",
                                  "transa transb m n k lda strideA ldb strideB ldc strideC batch")


def _layout(shape, strides, itemsize):
    """(op, ld) for a row-major-meaning matrix Y of ``shape`` (rows, cols) with byte ``strides``,
    as the cuBLAS operand that must equal Yᵀ in column-major terms; None if the layout can't be
    described.
    The stride of a dimension of size 1 is never used, so it may be anything."""
    rows, cols = shape
    if strides[0] % itemsize or strides[1] % itemsize:
        return None
    s0, s1 = strides[0] // itemsize, strides[1] // itemsize
    if (cols == 1 or s1 == 1) and (rows == 1 or s0 >= max(1, cols)):  # row-major
        return CUBLAS_OP_N, s0 if rows > 1 else max(1, cols)
    if (rows == 1 or s0 == 1) and (cols == 1 or s1 >= max(1, rows)):  # column-major
        return CUBLAS_OP_T, s1 if cols > 1 else max(1, rows)
    return None


def operand(shape, strides, itemsize, batch):
    """How one operand (shape (rows, cols) or (batch, rows, cols), byte strides) is passed:
    Operand(op, ld, batch stride in elements, 0, copied=False), or copied=True when it must be made
    contiguous."""
    if len(shape) == 2:
        shape, strides, bstride = tuple(shape), tuple(strides), 0
    else:
        if shape[0] not in (1, batch):
            raise ValueError(f"batched_matmul: batch of {shape[0]} against {batch}")
        bstride = 0 if shape[0] == 1 else strides[0]
        shape, strides = tuple(shape[1:]), tuple(strides[1:])
    lay = _layout(shape, strides, itemsize)
    if lay is None or bstride < 0 or bstride % itemsize:
        rows, cols = shape  # a C-contiguous copy
        return Operand(CUBLAS_OP_N, max(1, cols), rows * cols if bstride else 0, 0, True)
    return Operand(lay[0], lay[1], bstride // itemsize, 0, False)


def _view_shape(shape, strides, trans):
    """op(X) as a view: swap the last two axes when ``trans``."""
    if not trans:
        return tuple(shape), tuple(strides)
    swapped = tuple(shape[:-2]) + (shape[-1], shape[-2])
    return swapped, tuple(strides[:-2]) + (strides[-1], strides[-2])


def gemm_arguments(a_shape, a_strides, b_shape, b_strides, itemsize, trans_a=False, trans_b=False):
    """The cuBLAS strided-batched call computing C[i] = op(A[i]) @ op(B[i]) into a C-contiguous
    (batch, M, N) array: (GemmArgs, operand of A, operand of B). Pure bookkeeping (no arrays)."""
    if len(a_shape) not in (2, 3) or len(b_shape) not in (2, 3):
        raise ValueError(f"batched_matmul: operands must be 2-D or 3-D, got {a_shape} and "
                         f"{b_shape}")
    a_shape, a_strides = _view_shape(a_shape, a_strides, trans_a)
    b_shape, b_strides = _view_shape(b_shape, b_strides, trans_b)
    M, K = a_shape[-2:]
    K2, N = b_shape[-2:]
    if K != K2:
        raise ValueError(f"batched_matmul: inner dimensions differ, op(A) {a_shape} and op(B) "
                         f"{b_shape}")
    batches = [s[0] for s in (a_shape, b_shape) if len(s) == 3]
    batch = max(batches) if batches else 1
    if any(x not in (1, batch) for x in batches):
        raise ValueError(f"batched_matmul: batch sizes {batches} don't broadcast")
    A = operand(a_shape, a_strides, itemsize, batch)  # op(A) as Y: cuBLAS's second operand
    B = operand(b_shape, b_strides, itemsize, batch)  # op(B) as Y: cuBLAS's first operand
    args = GemmArgs(transa=B.op, transb=A.op, m=N, n=M, k=K, lda=B.ld, strideA=B.stride, ldb=A.ld,
                    strideB=A.stride, ldc=max(1, N), strideC=M * N, batch=batch)
    return args, A, B


def batched_matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    """op(a) @ op(b) batched, one cuBLAS call: (batch, M, N) (or out, a C-contiguous array of that
    shape and dtype). 2-D operands broadcast over the batch; the result is 3-D either way.
    ``accumulate`` adds the product to ``out`` (cuBLAS's beta = 1) instead of overwriting it."""
    cp = cupy_module()
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"batched_matmul: operands must both be float32 or float64, got {a.dtype} "
                        f"and {b.dtype}")
    args, A, B = gemm_arguments(a.shape, a.strides, b.shape, b.strides, a.itemsize, trans_a,
                                trans_b)
    if A.copied:
        a = cp.ascontiguousarray(a)
    if B.copied:
        b = cp.ascontiguousarray(b)
    if A.copied or B.copied:  # the layout after the copy
        args, _, _ = gemm_arguments(a.shape, a.strides, b.shape, b.strides, a.itemsize, trans_a,
                                    trans_b)
    shape = (args.batch, args.n, args.m)
    if accumulate and out is None:
        raise ValueError("batched_matmul: accumulate needs out, the array to add to")
    if out is None:
        out = cp.empty(shape, dtype=a.dtype)
    elif tuple(out.shape) != shape or out.dtype != a.dtype or not out.flags.c_contiguous:
        raise ValueError(f"batched_matmul: out must be a C-contiguous {shape} {a.dtype} array")
    if out.size == 0:
        return out
    if args.k == 0:
        if not accumulate:
            out.fill(0)
        return out
    cublas = cublas_module(cp)  # a missing libcublas: one line naming it and the fix
    # host scalars: CUBLAS_POINTER_MODE_HOST
    one, beta = np.ones((), a.dtype), np.full((), 1 if accumulate else 0, a.dtype)
    handle = cp.cuda.device.get_cublas_handle()
    if a.dtype == np.float32 and _tf32[0]:
        f32 = CUDA_R_32F
        cublas.gemmStridedBatchedEx(
            handle, args.transa, args.transb, args.m, args.n, args.k, one.ctypes.data,
            b.data.ptr, f32, args.lda, args.strideA, a.data.ptr, f32, args.ldb, args.strideB,
            beta.ctypes.data, out.data.ptr, f32, args.ldc, args.strideC, args.batch,
            CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT)
        return out
    fn = cublas.sgemmStridedBatched if a.dtype == np.float32 else cublas.dgemmStridedBatched
    fn(handle, args.transa, args.transb, args.m, args.n, args.k,
       one.ctypes.data, b.data.ptr, args.lda, args.strideA, a.data.ptr, args.ldb, args.strideB,
       beta.ctypes.data, out.data.ptr, args.ldc, args.strideC, args.batch)
    return out


def image_chunks(n_images, bytes_per_image, cap_bytes):
    """[(start, stop)] runs of images whose column matrices together stay within ``cap_bytes`` (at
    least one image per run, however large), so the pool holds one or two column-buffer sizes per
    layer instead of one per batch size."""
    if n_images <= 0:
        return []
    per = max(1, int(cap_bytes // max(1, bytes_per_image)))
    per = min(per, n_images)
    count = -(-n_images // per)
    # as even as possible: sizes base+1 and base, no small tail
    base, extra = divmod(n_images, count)
    bounds, start = [], 0
    for i in range(count):
        stop = start + base + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds
