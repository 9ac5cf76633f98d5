"""CUDA kernels for the GPU path (installed as ``tinygrad_yolo.kernels``) and their loader.

    im2col_gpu(x, win)                             x (N,C,H,W) -> col (N,C,kh,kw,Ho,Wo)
    im2col_gpu(x, win, "columns")                  -> col (C,kh,kw,N,Ho,Wo): dW as one GEMM
    col2im_gpu(col, x_shape, win)                  the adjoint (a gather, no atomics)
    max_pool2d_forward_gpu(x, win)                 -> (y, argmax)  argmax: int32 h*W + w
    max_pool2d_backward_gpu(gy, argmax, x_shape, win)  -> dx
    channel_dot_gpu(u, v)                          Σ u·v over axes 0 and 2 of (N, C, L): (C,)
    scale_shift_gpu(x, scale, shift)               x·scale[c] + shift[c] on (N, C, L), one pass
    batch_norm_dx_gpu(g, xc, g_scale, xc_scale, const)   g·g_scale[c] - (xc·xc_scale[c] + const[c])

``win`` is the call's window geometry, already checked: twelve plain ints in the order
(H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -- the ``Window`` that tinygrad_yolo/ops/geometry.py
builds, or any tuple of those numbers; this module imports nothing from ops/.

Same layouts and results as the NumPy reference in tinygrad_yolo/ops/im2col.py. The .cu sources
beside this file are read by path and compiled at first use with CuPy's NVRTC (``RawModule``),
once per (source, dtype) and CuPy module. CuPy is reached only through ``backend.cupy_module()``
and only when a function is called, so importing this module works on machines without CuPy or
a GPU.

The three batch-norm helpers are one-line element-wise and reduction kernels, written inline as
CuPy ElementwiseKernel and ReductionKernel templates (also compiled once): each fuses what would
otherwise be two to four passes over an activation-sized array.
"""
import functools
import os

import numpy as np

from tinygrad_yolo.backend import cupy_module, is_cuda_array

_DIR = os.path.dirname(os.path.abspath(__file__))

# The templated __global__ functions in each source; instantiated for float and double.
KERNELS = {
    "im2col.cu": ("im2col_kernel",),
    "col2im.cu": ("col2im_kernel",),
    "maxpool.cu": ("max_pool2d_forward_kernel", "max_pool2d_backward_kernel"),
}
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

MAX_BLOCK = 256         # threads per block
MAX_GRID_X = 4096       # blocks over the pixels of a plane; grid-stride loops cover the rest
MAX_GRID_Y = 65535      # CUDA's limit for gridDim.y; planes beyond it are covered by the loop
_INT32_MAX = 2**31 - 1


def source_path(name):
    """Absolute path of one .cu source shipped beside this file."""
    return os.path.join(_DIR, name)


def launch_config(planes, plane_size):
    """(grid, block) for the kernels' 2-D launch: y over planes, x over the pixels of a plane.

    Small planes (7x7 = 49 pixels) get a small block rather than a mostly idle 256-thread one.
    """
    plane_size = max(1, plane_size)
    block = min(MAX_BLOCK, 32 * -(-plane_size // 32))  # round up to whole warps
    # max(1, ...): an empty batch still launches a valid grid; the loops then do nothing.
    grid = (min(MAX_GRID_X, -(-plane_size // block)), max(1, min(MAX_GRID_Y, planes)), 1)
    return grid, (block, 1, 1)


def ctype_of(dtype):
    try:
        return _CTYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"the CUDA kernels support float32 and float64 arrays, got "
                        f"{np.dtype(dtype)}") from None


@functools.lru_cache(maxsize=None)
def _module(cp, source, ctype):
    """Compile one source for one element type with CuPy module ``cp`` (cached: NVRTC takes a
    while; per module, so that a stand-in for CuPy compiles its own)."""
    with open(source_path(source), encoding="utf-8") as f:
        code = f.read()
    names = tuple(f"{k}<{ctype}>" for k in KERNELS[source])
    return cp.RawModule(code=code, options=("--std=c++14",), name_expressions=names)


def _kernel(source, name, dtype):
    ctype = ctype_of(dtype)
    return _module(cupy_module(), source, ctype).get_function(f"{name}<{ctype}>")


def _device_array(cp, what, a, ndim=None, float_only=True):
    """Check a kernel argument; return it C-contiguous (the kernels index raw pointers)."""
    if not is_cuda_array(a):
        raise TypeError(f"{what} must be a CuPy array, got {type(a).__name__}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {tuple(a.shape)}")
    if float_only:
        ctype_of(a.dtype)
    return cp.ascontiguousarray(a)


def _window_ints(x_shape, win):
    """N*C, (kh, kw, Ho, Wo), and the int32 geometry arguments every kernel takes (in the .cu
    signatures' order; the dilation separately, which only im2col and col2im take)."""
    H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo = (int(v) for v in win)
    N, C, xh, xw = (int(v) for v in x_shape)
    if (xh, xw) != (H, W):
        raise ValueError(f"the geometry is for {H}x{W} images, got shape {tuple(x_shape)}")
    if H * W > _INT32_MAX or Ho * Wo > _INT32_MAX:
        raise ValueError(f"an image plane of {H}x{W} (output {Ho}x{Wo}) exceeds the kernels' "
                         "32-bit per-plane indexing")
    ints = [np.int32(v) for v in (H, W, Ho, Wo, kh, kw, sh, sw, ph, pw)]
    return N * C, (kh, kw, Ho, Wo), ints, [np.int32(dh), np.int32(dw)]


def im2col_layout(layout, N, C, kh, kw, plane_size):
    """(image_stride, tap_stride) in elements of im2col.cu's col for ``layout``: "images"
    (N, C, kh, kw, Ho, Wo) or "columns" (C, kh, kw, N, Ho, Wo)."""
    if layout == "images":
        return C * kh * kw * plane_size, plane_size
    if layout == "columns":
        return plane_size, N * plane_size
    raise ValueError(f"im2col layout must be 'images' or 'columns', got {layout!r}")


def im2col_gpu(x, win, layout="images"):
    cp = cupy_module()
    x = _device_array(cp, "im2col_gpu input x (N, C, H, W)", x, ndim=4)
    NC, (kh, kw, Ho, Wo), ints, dil = _window_ints(x.shape, win)
    N, C = x.shape[:2]
    strides = im2col_layout(layout, N, C, kh, kw, Ho * Wo)
    shape = (N, C, kh, kw, Ho, Wo) if layout == "images" else (C, kh, kw, N, Ho, Wo)
    col = cp.empty(shape, dtype=x.dtype)
    grid, block = launch_config(NC, Ho * Wo)  # a thread per output pixel writes all its taps
    _kernel("im2col.cu", "im2col_kernel", x.dtype)(
        grid, block, (x, col, np.int64(NC), *ints, *dil, np.int32(max(C, 1)),
                      *(np.int64(s) for s in strides)))
    return col


def col2im_gpu(col, x_shape, win):
    cp = cupy_module()
    if len(x_shape) != 4:
        raise ValueError(f"col2im_gpu x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    NC, col_shape, ints, dil = _window_ints(x_shape, win)
    expected = tuple(x_shape[:2]) + col_shape
    if tuple(col.shape) != expected:
        raise ValueError(f"col2im_gpu col must have shape {expected} for x_shape {tuple(x_shape)}, "
                         f"got {tuple(col.shape)}")
    col = _device_array(cp, "col2im_gpu col", col)
    x = cp.empty(tuple(x_shape), dtype=col.dtype)  # the gather writes every pixel: no zero fill
    grid, block = launch_config(NC, x_shape[2] * x_shape[3])
    _kernel("col2im.cu", "col2im_kernel", col.dtype)(grid, block,
                                                     (col, x, np.int64(NC), *ints, *dil))
    return x


def max_pool2d_forward_gpu(x, win):
    """-> (y, argmax): argmax (int32) is the winner's index h*W + w inside its (n, c) plane.
    ``win`` is a pooling window (dilation 1, padding at most half the kernel)."""
    cp = cupy_module()
    x = _device_array(cp, "max_pool2d_forward_gpu input x (N, C, H, W)", x, ndim=4)
    NC, (_, _, Ho, Wo), ints, _ = _window_ints(x.shape, win)
    y = cp.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    argmax = cp.empty(y.shape, dtype=cp.int32)
    grid, block = launch_config(NC, Ho * Wo)
    _kernel("maxpool.cu", "max_pool2d_forward_kernel", x.dtype)(
        grid, block, (x, y, argmax, np.int64(NC), *ints))
    return y, argmax


def max_pool2d_backward_gpu(gy, argmax, x_shape, win):
    cp = cupy_module()
    if len(x_shape) != 4:
        raise ValueError(f"max_pool2d_backward_gpu x_shape must be (N, C, H, W), got "
                         f"{tuple(x_shape)}")
    NC, (_, _, Ho, Wo), ints, _ = _window_ints(x_shape, win)
    expected = tuple(x_shape[:2]) + (Ho, Wo)
    if tuple(gy.shape) != expected or tuple(argmax.shape) != expected:
        raise ValueError(f"max_pool2d_backward_gpu gy and argmax must have shape {expected}, "
                         f"got {tuple(gy.shape)} and {tuple(argmax.shape)}")
    if argmax.dtype != np.int32:
        raise TypeError(f"argmax must be int32 (from max_pool2d_forward_gpu), got {argmax.dtype}")
    gy = _device_array(cp, "max_pool2d_backward_gpu gy", gy)
    argmax = _device_array(cp, "max_pool2d_backward_gpu argmax", argmax, float_only=False)
    gx = cp.empty(tuple(x_shape), dtype=gy.dtype)
    grid, block = launch_config(NC, x_shape[2] * x_shape[3])
    _kernel("maxpool.cu", "max_pool2d_backward_kernel", gy.dtype)(
        grid, block, (gy, argmax, gx, np.int64(NC), *ints))
    return gx


# ---- batch norm's passes, fused (tinygrad_yolo/ops/norm.py) ------------------------------------
@functools.lru_cache(maxsize=None)
def _batch_norm_kernels(cp):
    # In ReductionKernel's templates `a` and `b` are the reduction's own operands, so the inputs
    # need other names. The sum runs over the contiguous L axis of each (n, c) row: N*C sums keep
    # the whole GPU busy, where one sum per channel (64 of them in ResNet's first layers) would not.
    row_dot = cp.ReductionKernel("T u, T v", "T s", "u * v", "a + b", "s = a", "0", "tg_row_dot")
    scale_shift = cp.ElementwiseKernel("T x, T scale, T shift", "T y", "y = x * scale + shift",
                                       "tg_scale_shift")
    dx = cp.ElementwiseKernel("T g, T xc, T g_scale, T xc_scale, T c", "T dx",
                              "dx = g * g_scale - (xc * xc_scale + c)", "tg_batch_norm_dx")
    return row_dot, scale_shift, dx


def _per_channel(cp, what, v, C, dtype):
    v = cp.asarray(v).astype(dtype, copy=False)
    if v.shape != (C,):
        raise ValueError(f"{what} must have shape ({C},), got {tuple(v.shape)}")
    return v[:, None]  # broadcasts over (N, C, L)


def _check_ncl(what, a):
    if not is_cuda_array(a):
        raise TypeError(f"{what} must be a CuPy array, got {type(a).__name__}")
    if a.ndim != 3:
        raise ValueError(f"{what} must be 3-D (N, C, L), got shape {tuple(a.shape)}")
    ctype_of(a.dtype)


def channel_dot_gpu(u, v):
    """Σ over n and l of u[n, c, l] * v[n, c, l] for (N, C, L) CuPy arrays -> (C,)."""
    for what, a in (("channel_dot_gpu u", u), ("channel_dot_gpu v", v)):
        _check_ncl(what, a)
    if u.shape != v.shape:
        raise ValueError(f"channel_dot_gpu: shapes differ, {tuple(u.shape)} and {tuple(v.shape)}")
    row_dot = _batch_norm_kernels(cupy_module())[0]
    return row_dot(u, v, axis=2).sum(axis=0)


def scale_shift_gpu(x, scale, shift):
    """x (N, C, L) * scale[c] + shift[c], a fresh array, in one pass."""
    cp = cupy_module()
    _check_ncl("scale_shift_gpu x", x)
    C = x.shape[1]
    return _batch_norm_kernels(cp)[1](x, _per_channel(cp, "scale", scale, C, x.dtype),
                                    _per_channel(cp, "shift", shift, C, x.dtype))


def batch_norm_dx_gpu(g, xc, g_scale, xc_scale, const):
    """g * g_scale[c] - (xc * xc_scale[c] + const[c]) for (N, C, L) g and xc: batch norm's dx."""
    cp = cupy_module()
    for what, a in (("batch_norm_dx_gpu g", g), ("batch_norm_dx_gpu xc", xc)):
        _check_ncl(what, a)
    if g.shape != xc.shape:
        raise ValueError(f"batch_norm_dx_gpu: g {tuple(g.shape)} and xc {tuple(xc.shape)} differ "
                         "in shape")
    C = g.shape[1]
    factors = (("g_scale", g_scale), ("xc_scale", xc_scale), ("const", const))
    return _batch_norm_kernels(cp)[2](g, xc, *(_per_channel(cp, name, v, C, g.dtype)
                                               for name, v in factors))
