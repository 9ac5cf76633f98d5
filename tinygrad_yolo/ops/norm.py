"""Batch normalisation, forward and the compact backward side by side.

Per channel c, over the m = N*H*W values of a batch (x of shape (N, C) or (N, C, H, W)):

    training:  mean, var = batch mean and biased variance;  x̂ = (x - mean) / sqrt(var + eps)
               running stats <- (1 - momentum) * running + momentum * (mean, var * m / (m - 1))
    eval:      mean, var = the running statistics
    y = γ x̂ + β

Backward in training mode, the three paths through x (directly, via the mean, via the
variance) collapse into one expression (Ioffe & Szegedy 2015, rearranged):

    dβ = Σ g      dγ = Σ g·x̂      dx = (γ / sqrt(var + eps)) · (g - dβ/m - x̂ · dγ/m)

In eval mode mean and var are constants: dx = γ / sqrt(var + eps) · g.

BatchNorm below is those formulas as plain array passes, on NumPy and CuPy alike. It is the
hottest elementwise op in a ResNet, so the CPU runs a subclass written for few passes over
memory (ops/fast/norm.py: ChunkedBatchNorm), and CUDA fused kernels that add a residual and
apply a ReLU too (cuda/norm.py); tinygrad_yolo/dispatch.py picks one per call.
"""
from ..backend import array_module, device_of
from ..function import Function


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
            raise RuntimeError(f"batch_norm: {name} is on {device_of(a)} but the input is on "
                               f"{device_of(x)}")
    return N, C


def check_batch_norm_mode(x_shape, m, training, running_mean, running_var):
    """What each mode needs: more than one value per channel (m of them) to train on, running
    statistics to evaluate with."""
    if training and m <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input size {x_shape}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm: running_mean and running_var are needed in eval mode")


def check_batch_norm(x, weight, bias, running_mean, running_var, training):
    """(N, C, L) of an (N, C, ...) input, L the values per sample and channel, after every check
    batch norm makes."""
    N, C = check_batch_norm_args(x, weight, bias, running_mean, running_var)
    L = 1
    for side in x.shape[2:]:
        L *= side
    check_batch_norm_mode(x.shape, N * L, training, running_mean, running_var)
    return N, C, L


class BatchNorm(Function):
    """Inputs (x, weight, bias). Running statistics are arrays updated in place (training) or
    read (eval); they are not graph inputs."""
    name = "BatchNorm"  # whichever path (subclass) runs

    def __init__(self, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = bool(training), momentum, eps

    def forward(self, x, weight, bias):
        N, C, L = check_batch_norm(x, weight, bias, self.running_mean, self.running_var,
                                   self.training)
        xp = array_module(x)
        x3 = x.reshape(N, C, L)  # not -1: that can't be inferred when N or C is 0
        if self.training:
            mean = x3.mean(axis=(0, 2))
            var = ((x3 - mean[:, None]) ** 2).mean(axis=(0, 2))  # biased: what normalises
            self.update_running_stats(mean, var, N * L)
        else:
            mean = self.running_mean.astype(x.dtype)
            var = self.running_var.astype(x.dtype)
        self.inv_std = 1 / xp.sqrt(var + self.eps)
        self.x_hat = (x3 - mean[:, None]) * self.inv_std[:, None]
        self.weight, self.shape = weight, x.shape
        self.running_mean = self.running_var = None  # not saved for backward (updated already)
        return (weight[:, None] * self.x_hat + bias[:, None]).reshape(x.shape)

    def backward(self, gy):
        g3 = gy.reshape(self.x_hat.shape)
        m = g3.shape[0] * g3.shape[2]
        dbeta = g3.sum(axis=(0, 2))
        dgamma = (g3 * self.x_hat).sum(axis=(0, 2))
        dx = None
        if self.needs_input_grad[0]:
            scale = (self.weight * self.inv_std)[:, None]
            if self.training:
                dx = scale * (g3 - dbeta[:, None] / m - self.x_hat * (dgamma[:, None] / m))
            else:
                dx = scale * g3
            dx = dx.reshape(self.shape)
        return (dx, dgamma if self.needs_input_grad[1] else None,
                dbeta if self.needs_input_grad[2] else None)

    def update_running_stats(self, mean, var, m):
        """running <- (1 - momentum) running + momentum (mean, var · m / (m - 1)), in place: the
        variance unbiased, as PyTorch stores it."""
        if self.running_mean is not None:
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
        if self.running_var is not None:
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * m / (m - 1)) * var
