"""Batch norm (+ a residual add) (+ ReLU) as one op on CUDA: three kernels forward and three
backward (kernels/batchnorm.cu through kernels/fused.py) instead of ~19 and ~15 array calls, and
one activation-sized array saved (the input, which the CPU's ChunkedBatchNorm replaces by
x - mean) plus the output when a ReLU is fused (its mask). ops/norm.py's BatchNorm is the
reference it is tested against; dispatch.batch_norm_path picks it for CUDA arrays.

    y = relu((x - mean) / sqrt(var + eps) * weight + bias + residual)

Inputs (x, weight, bias) or (x, weight, bias, residual); same running-statistics semantics as
ops/norm.BatchNorm (PyTorch's: unbiased running variance, updated in place in training).
"""
from ..backend import array_module, cuda_kernels
from ..function import Function
from ..ops.norm import check_batch_norm_args, check_batch_norm_mode


def _fused():
    return cuda_kernels("fused")


class FusedBatchNorm(Function):
    """Inputs (x, weight, bias) or (x, weight, bias, residual); ``relu`` fuses the ReLU."""

    def __init__(self, running_mean, running_var, training, momentum=0.1, eps=1e-5, relu=False):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = bool(training), momentum, eps
        self.relu = bool(relu)

    def forward(self, x, weight, bias, residual=None):
        xp = array_module(x)
        N, C = check_batch_norm_args(x, weight, bias, self.running_mean, self.running_var)
        if residual is not None and tuple(residual.shape) != tuple(x.shape):
            raise ValueError(f"batch_norm: residual must have the input's shape {x.shape}, "
                             f"got {residual.shape}")
        L = 1
        for side in x.shape[2:]:
            L *= side
        check_batch_norm_mode(x.shape, N * L, self.training, self.running_mean, self.running_var)
        self.shape, self.has_residual = x.shape, residual is not None
        x3 = xp.ascontiguousarray(x).reshape(N, C, L)
        r3 = None
        if residual is not None:
            r3 = xp.ascontiguousarray(residual.astype(x.dtype, copy=False)).reshape(N, C, L)
        y3, self.mean, self.invstd = _fused().batch_norm_forward_gpu(
            x3, weight, bias, self.running_mean, self.running_var, self.training, self.momentum,
            self.eps, residual=r3, relu=self.relu)
        self.x3, self.weight = x3, weight
        self.y3 = y3 if self.relu else None  # the ReLU's mask for backward
        self.running_mean = self.running_var = None  # not saved for backward (updated already)
        return y3.reshape(x.shape)

    def backward(self, gy):
        xp = array_module(gy)
        need = self.needs_input_grad
        g3 = xp.ascontiguousarray(gy).reshape(self.x3.shape)
        dx, dgamma, dbeta, g_res = _fused().batch_norm_backward_gpu(
            g3, self.x3, self.y3, self.mean, self.invstd, self.weight, self.training,
            relu=self.relu, need_x=need[0], need_residual=self.has_residual and need[3])
        grads = (None if dx is None else dx.reshape(self.shape), dgamma if need[1] else None,
                 dbeta if need[2] else None)
        if self.has_residual:
            grads += (None if g_res is None else g_res.reshape(self.shape),)
        return grads
