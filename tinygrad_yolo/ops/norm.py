"""Batch normalisation as one fused op (forward and the compact backward side by side).

Per channel c, over the m = N*H*W values of a batch (x of shape (N, C) or (N, C, H, W)):

    training:  mean, var = batch mean and biased variance;  x̂ = (x - mean) / sqrt(var + eps)
               running stats <- (1 - momentum) * running + momentum * (mean, var * m / (m - 1))
    eval:      mean, var = the running statistics
    y = γ x̂ + β

Backward in training mode, the three paths through x (directly, via the mean, via the
variance) collapse into one expression (Ioffe & Szegedy 2015, rearranged):

    dβ = Σ g      dγ = Σ g·x̂      dx = (γ / sqrt(var + eps)) · (g - dβ/m - x̂ · dγ/m)

This is the hottest elementwise op in a ResNet, so it is written for few passes over memory:
the centred input xc = x - mean is the only array saved (x̂ = xc · inv_std), and the passes
themselves (sums, y = x·scale + shift, dx) live in ops/fast/norm.py, fused kernels on CUDA.
"""
from ..backend import array_module, device_of
from ..function import Function
from .fast.norm import centre, channel_dot, channel_sum, rows, scale_shift, sums, training_dx


def check_batch_norm_args(x, weight, bias, running_mean, running_var):
    """(N, C) of an (N, C, ...) input, after checking every per-channel array against it."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, H, W), got shape {x.shape}")
    N, C = x.shape[:2]
    for name, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if a is not None and tuple(a.shape) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) for input {x.shape}, "
                             f"got {tuple(a.shape)}")
        if a is not None and device_of(a) != device_of(x):
            raise RuntimeError(f"batch_norm: {name} is on {device_of(a)} but the input is on {device_of(x)}")
    return N, C


class BatchNorm(Function):
    """Inputs (x, weight, bias). Running statistics are arrays updated in place (training) or
    read (eval); they are not graph inputs."""

    def __init__(self, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = bool(training), momentum, eps

    def forward(self, x, weight, bias):
        xp = array_module(x)
        N, C = check_batch_norm_args(x, weight, bias, self.running_mean, self.running_var)
        L = 1
        for side in x.shape[2:]:
            L *= side
        x3 = x.reshape(N, C, L)  # not -1: that can't be inferred when N or C is 0
        m = N * L
        self.shape, self.m, self.L = x.shape, m, L

        if self.training:
            if m <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                                 f"got input size {x.shape}")
            mean = channel_sum(x3) / m
            xc, sum_sq = centre(x3, mean)
            var = sum_sq / m  # biased: what normalises this batch
            if self.running_mean is not None:
                self.running_mean *= 1 - self.momentum
                self.running_mean += self.momentum * mean
            if self.running_var is not None:  # unbiased, as PyTorch stores it
                self.running_var *= 1 - self.momentum
                self.running_var += (self.momentum * m / (m - 1)) * var
            self.inv_std = 1 / xp.sqrt(var + self.eps)
            self.xc = xc
            scale, shift, src = weight * self.inv_std, bias, xc  # y = xc·(γ·inv_std) + β
        else:
            if self.running_mean is None or self.running_var is None:
                raise ValueError("batch_norm: running_mean and running_var are needed in eval mode")
            # a copy (C values): the running statistics stay the module's, updated in place by
            # the next training forward, and are not part of what this op saved
            mean = self.running_mean.astype(x.dtype, copy=True)
            self.inv_std = 1 / xp.sqrt(self.running_var.astype(x.dtype, copy=False) + self.eps)
            self.x3, self.mean = x3, mean
            scale = weight * self.inv_std
            shift, src = bias - mean * scale, x3  # y = x·(γ·inv_std) + (β - mean·γ·inv_std)
        self.weight = weight
        self.running_mean = self.running_var = None  # not saved for backward (see above)
        return scale_shift(src, scale, shift).reshape(x.shape)

    def backward(self, g):
        N, C = self.shape[:2]
        g3 = g.reshape(N, C, self.L)
        scale = self.weight * self.inv_std
        if self.training:
            sum_g, sum_gxc = sums(g3, self.xc)
            dgamma = sum_gxc * self.inv_std  # Σ g·x̂
            dx = None
            if self.needs_input_grad[0]:
                # dx = scale·g - (xc · scale·inv_std²/m·Σ(g·xc) + scale/m·Σg)
                xc_scale = scale * self.inv_std * self.inv_std * (sum_gxc / self.m)
                const = scale * (sum_g / self.m)
                dx = training_dx(g3, self.xc, scale, xc_scale, const).reshape(self.shape)
        else:
            sum_g = channel_sum(g3)
            dgamma = (channel_dot(g3, self.x3) - self.mean * sum_g) * self.inv_std  # Σ g·(x - mean)·inv_std
            dx = (g3 * rows(scale, self.L)).reshape(self.shape) if self.needs_input_grad[0] else None
        return (dx, dgamma if self.needs_input_grad[1] else None,
                sum_g if self.needs_input_grad[2] else None)
