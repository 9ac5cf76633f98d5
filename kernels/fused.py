"""Fused batch norm and optimizer steps on CUDA (kernels/batchnorm.cu, kernels/optim.cu), and their
launch geometry. Installed as ``tinygrad_yolo.kernels.fused``; reached through
``backend.cuda_kernels()`` (which makes the package importable from a source checkout too).

    batch_norm_forward_gpu(x3, weight, bias, running_mean, running_var, training, momentum, eps,
                           residual=None, relu=False)         -> y3, mean, invstd     (3 launches)
    batch_norm_backward_gpu(g3, x3, y3, mean, invstd, weight, training, relu, need_x, need_residual)
                                                              -> dx3, dgamma, dbeta, g_residual (3)
    sgd_step_gpu(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first)     (1)
    adam_step_gpu(p, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
                  decoupled)                                                                (1)

x3, g3, y3 are contiguous (N, C, L) arrays; per-channel vectors are (C,). In eval mode the
forward is bn_apply_kernel alone with scale and shift from the running statistics (the two tiny
per-channel expressions, 1/sqrt(var + eps) and γ times it, run as CuPy array ops). CuPy is used
only when a function is called.
"""
import functools
import math
import os

import numpy as np

from tinygrad_yolo.backend import cupy_module, is_cuda_array

from . import ctype_of  # float32 -> float, float64 -> double, else a TypeError naming the dtype

_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCES = {
    "batchnorm.cu": ("bn_partial_stats_kernel", "bn_finalize_kernel", "bn_apply_kernel",
                     "bn_partial_grad_kernel", "bn_grad_finalize_kernel", "bn_dx_kernel"),
    "optim.cu": ("sgd_step_kernel", "adam_step_kernel"),
}

BLOCK = 256
MAX_SHARES = 1024       # partial results per channel (P)
MIN_SHARE = 64          # ... each over at least this many values where the channel is small
MAX_GRID_X = 8192       # element-wise kernels: grid-stride beyond this many blocks
MAX_GRID_Y = 65535
NULL = np.uint64(0)     # a null pointer argument (an 8-byte kernel parameter)


def shares(m):
    """P, the partial results per channel for m values: ~m/64 of them, at most 1024, a whole
    number of warps once there are more than 32."""
    P = max(1, min(MAX_SHARES, -(-m // MIN_SHARE)))
    return P if P <= 32 else 32 * -(-P // 32)


def shares_launch(C, P):
    """(grid, block) of the partial-reduction kernels: x over the P shares, y over channels."""
    block = min(BLOCK, 32 * -(-P // 32))
    return (-(-P // block), max(1, min(MAX_GRID_Y, C)), 1), (block, 1, 1)


def channels_launch(C):
    """(grid, block) of the per-channel kernels: one warp per channel (a block holds up to
    BLOCK / 32 of them; a grid-stride loop covers channels beyond MAX_GRID_X blocks)."""
    warps = max(1, min(BLOCK // 32, C))
    return (max(1, min(MAX_GRID_X, -(-C // warps))), 1, 1), (32 * warps, 1, 1)


def elementwise_launch(total):
    return (max(1, min(MAX_GRID_X, -(-total // BLOCK))), 1, 1), (BLOCK, 1, 1)


def planes_launch(planes, plane_size):
    """(grid, block) of bn_apply_kernel and bn_dx_kernel: y over the N*C planes, x over the L
    values of a plane (a grid-stride loop each way), so a thread finds its channel once per plane
    instead of by a 64-bit division per element."""
    block = min(BLOCK, 32 * -(-max(plane_size, 1) // 32))
    grid_x = max(1, min(MAX_GRID_X, -(-plane_size // block)))
    return (grid_x, max(1, min(MAX_GRID_Y, planes)), 1), (block, 1, 1)


def source_path(name):
    return os.path.join(_DIR, name)


@functools.lru_cache(maxsize=None)
def _module(cp, source):
    """Compile one source with CuPy module ``cp`` (cached per module, as kernels/__init__.py)."""
    with open(source_path(source), encoding="utf-8") as f:
        code = f.read()
    names = tuple(f"{k}<{t}>" for k in SOURCES[source] for t in ("float", "double"))
    return cp.RawModule(code=code, options=("--std=c++14",), name_expressions=names)


def _kernel(source, name, dtype):
    return _module(cupy_module(), source).get_function(f"{name}<{ctype_of(dtype)}>")


def _check(what, a, shape=None, dtype=None):
    if not is_cuda_array(a):
        raise TypeError(f"{what} must be a CuPy array, got {type(a).__name__}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{what} must have shape {tuple(shape)}, got {tuple(a.shape)}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{what} must be {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous")
    return a


def _pointer(a):
    """A kernel's optional array argument: the array, or a null pointer for None."""
    return NULL if a is None else a


def _vector(cp, what, v, C, dtype):
    """A per-channel (C,) vector in the kernels' dtype, contiguous (a copy only when needed)."""
    v = cp.ascontiguousarray(v.astype(dtype, copy=False))
    return _check(what, v, (C,))


def batch_norm_forward_gpu(x3, weight, bias, running_mean, running_var, training, momentum=0.1,
                           eps=1e-5, residual=None, relu=False):
    """y3 = [relu]((x3 - mean)·γ/σ + β [+ residual]); training: batch statistics (running ones
    updated in place), else the running statistics. Returns (y3, mean, invstd) -- the statistics
    used, per channel, for backward."""
    cp = cupy_module()
    _check("batch_norm x (N, C, L)", x3)
    N, C, L = x3.shape
    dt = x3.dtype
    weight, bias = _vector(cp, "weight", weight, C, dt), _vector(cp, "bias", bias, C, dt)
    if residual is not None:
        _check("residual", residual, x3.shape, dt)
    m = N * L
    if training:
        for what, r in (("running_mean", running_mean), ("running_var", running_var)):
            if r is not None:
                _check(what, r, (C,), dt)  # updated in place by the kernel
        P = shares(m)
        part_mean, part_m2 = cp.empty((C, P), dt), cp.empty((C, P), dt)
        grid, block = shares_launch(C, P)
        _kernel("batchnorm.cu", "bn_partial_stats_kernel", dt)(
            grid, block, (x3, part_mean, part_m2, np.int64(N), np.int32(C), np.int64(L),
                          np.int32(P)))
        mean, invstd, scale = (cp.empty((C,), dt) for _ in range(3))
        grid, block = channels_launch(C)
        _kernel("batchnorm.cu", "bn_finalize_kernel", dt)(
            grid, block, (part_mean, part_m2, weight, _pointer(running_mean), _pointer(running_var),
                          mean, invstd, scale, np.int64(m), np.int32(C), np.int32(P),
                          np.float64(eps), np.float64(momentum)))
    else:
        mean = running_mean.astype(dt, copy=True)
        invstd = 1 / cp.sqrt(running_var.astype(dt, copy=False) + eps)
        scale = weight * invstd
    y3 = cp.empty(x3.shape, dt)
    grid, block = planes_launch(N * C, L)
    _kernel("batchnorm.cu", "bn_apply_kernel", dt)(
        grid, block, (x3, mean, scale, bias, _pointer(residual), y3, np.int64(x3.size),
                      np.int32(C), np.int64(L), np.int32(bool(relu))))
    return y3, mean, invstd


def batch_norm_backward_gpu(g3, x3, y3, mean, invstd, weight, training, relu=False, need_x=True,
                            need_residual=False):
    """The gradients of batch_norm_forward_gpu: (dx3 or None, dgamma, dbeta, g_residual or None).
    y3 (the forward's output) is read only for the ReLU's mask."""
    cp = cupy_module()
    _check("batch_norm g (N, C, L)", g3)
    N, C, L = g3.shape
    dt = g3.dtype
    _check("batch_norm x", x3, g3.shape, dt)
    if relu:
        _check("batch_norm y", y3, g3.shape, dt)
    weight = _vector(cp, "weight", weight, C, dt)
    mean, invstd = _vector(cp, "mean", mean, C, dt), _vector(cp, "invstd", invstd, C, dt)
    m = N * L
    P = shares(m)
    part_g, part_gx = cp.empty((C, P), dt), cp.empty((C, P), dt)
    grid, block = shares_launch(C, P)
    y_arg = y3 if relu else NULL
    _kernel("batchnorm.cu", "bn_partial_grad_kernel", dt)(
        grid, block, (g3, x3, y_arg, mean, invstd, part_g, part_gx, np.int64(N), np.int32(C),
                      np.int64(L), np.int32(P), np.int32(bool(relu))))
    dgamma, dbeta, coef_g, coef_x, coef_c = (cp.empty((C,), dt) for _ in range(5))
    grid, block = channels_launch(C)
    _kernel("batchnorm.cu", "bn_grad_finalize_kernel", dt)(
        grid, block, (part_g, part_gx, weight, invstd, dgamma, dbeta, coef_g, coef_x, coef_c,
                      np.int64(m), np.int32(C), np.int32(P), np.int32(bool(training))))
    dx = cp.empty(g3.shape, dt) if need_x else None
    g_res = cp.empty(g3.shape, dt) if need_residual else None
    if need_x or need_residual:
        grid, block = planes_launch(N * C, L)
        _kernel("batchnorm.cu", "bn_dx_kernel", dt)(
            grid, block, (g3, x3, y_arg, mean, invstd, coef_g, coef_x, coef_c, _pointer(dx),
                          _pointer(g_res), np.int64(g3.size), np.int32(C), np.int64(L),
                          np.int32(bool(relu))))
    return dx, dgamma, dbeta, g_res


def _step_arrays(what, p, *others):
    _check(f"{what} parameter", p)
    for name, a in others:
        if a is not None:
            _check(f"{what} {name}", a, p.shape, p.dtype)


def sgd_step_gpu(p, grad, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 first=False):
    """One SGD step of parameter p in place (and of its momentum buffer ``buf``, written whole when
    ``first``); one launch."""
    _step_arrays("sgd_step_gpu", p, ("grad", grad), ("momentum buffer", buf))
    if momentum != 0 and buf is None:
        raise ValueError("sgd_step_gpu: momentum needs a buffer (an empty one on the first step)")
    T = p.dtype.type
    grid, block = elementwise_launch(p.size)
    _kernel("optim.cu", "sgd_step_kernel", p.dtype)(
        grid, block, (p, grad, _pointer(buf), np.int64(p.size), T(lr), T(momentum), T(dampening),
                      T(weight_decay), np.int32(bool(nesterov)), np.int32(bool(first))))


def adam_step_gpu(p, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
                  decoupled):
    """One Adam (AdamW when ``decoupled``) step of p, exp_avg, exp_avg_sq in place; ``step``
    counts from 1. The scalar factors are computed here in double, as optim/adam.py computes
    them."""
    _step_arrays("adam_step_gpu", p, ("grad", grad), ("exp_avg", exp_avg),
                 ("exp_avg_sq", exp_avg_sq))
    T = p.dtype.type
    step_size = lr / (1 - beta1 ** step)
    bias2_sqrt = math.sqrt(1 - beta2 ** step)
    grid, block = elementwise_launch(p.size)
    _kernel("optim.cu", "adam_step_kernel", p.dtype)(
        grid, block, (p, grad, exp_avg, exp_avg_sq, np.int64(p.size), T(beta1), T(1 - beta1),
                      T(beta2), T(1 - beta2), T(eps), T(weight_decay), T(1 - lr * weight_decay),
                      T(step_size), T(bias2_sqrt), np.int32(bool(decoupled))))
