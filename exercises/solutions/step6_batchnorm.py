"""Step 6 - batch normalisation's backward, in training mode.

Per channel c, over the m = N*H*W values of the batch:

    mean = Σ x / m,   var = Σ (x - mean)² / m,   x̂ = (x - mean) / √(var + eps),   y = γ x̂ + β

The gradients of γ and β are sums over the batch: dγ = Σ g·x̂, dβ = Σ g. The input's is the
hard part, because mean and var depend on every x of the channel. With ĝ = γ g (the
gradient reaching x̂), the chain rule through both statistics collapses to

    dx = (ĝ - mean(ĝ) - x̂ · mean(ĝ·x̂)) / √(var + eps)

(means over the batch, per channel): the first term is the direct path, the second comes
through the mean, the third through the variance.
"""
import numpy as np

from tinygrad_yolo.function import Function


class BatchNorm(Function):
    """Inputs (x, weight, bias); x is (N, C) or (N, C, H, W). Running statistics, when given,
    are updated in place (as the project's op does); they are not graph inputs."""

    def __init__(self, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
        if not training:
            raise ValueError("this exercise is batch norm in training mode (batch statistics) only")
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps = momentum, eps

    def forward(self, x, weight, bias):
        self.axes = (0,) + tuple(range(2, x.ndim))         # every axis but the channels
        shape = (1, -1) + (1,) * (x.ndim - 2)              # a per-channel vector, broadcastable
        mean = x.mean(axis=self.axes, keepdims=True)
        var = x.var(axis=self.axes, keepdims=True)         # biased: what normalises this batch
        m = x.size // x.shape[1]
        if self.running_mean is not None:
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean.reshape(-1)
        if self.running_var is not None:                   # unbiased, as PyTorch stores it
            self.running_var *= 1 - self.momentum
            self.running_var += self.momentum * m / (m - 1) * var.reshape(-1)
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.xhat = (x - mean) * self.inv_std
        self.gamma = weight.reshape(shape)
        return self.xhat * self.gamma + bias.reshape(shape)

    def backward(self, g):
        dgamma = (g * self.xhat).sum(axis=self.axes)
        dbeta = g.sum(axis=self.axes)
        gh = g * self.gamma                                # the gradient reaching x̂
        dx = self.inv_std * (gh - gh.mean(axis=self.axes, keepdims=True)
                             - self.xhat * (gh * self.xhat).mean(axis=self.axes, keepdims=True))
        return dx, dgamma, dbeta
