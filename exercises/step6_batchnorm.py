"""Step 6 - batch normalisation's backward, in training mode.

Per channel c, over the m = N*H*W values of the batch:

    mean = Σ x / m,   var = Σ (x - mean)² / m,   x̂ = (x - mean) / √(var + eps),   y = γ x̂ + β

Write forward (x is (N, C) or (N, C, H, W); the statistics are over every axis but 1) and
backward, which returns (dx, dγ, dβ). dγ and dβ are sums over the batch; dx is the hard part,
because mean and var depend on every x of the channel: x reaches the loss by three paths
(directly, through the mean, through the variance). `tinygrad-yolo demo batchnorm` takes each
path on four numbers; derive the compact form yourself, then compare with the walkthrough. If running statistics are given, update them in place
as PyTorch does: running = (1 - momentum) running + momentum * batch statistic, with the
unbiased variance (m / (m - 1) var).

The checks run the project's "batch_norm_train" gradient-check case with your op and compare
the forward and the running statistics with tinygrad_yolo.nn.functional.batch_norm.

What the checks rely on: ``BatchNorm.apply(x, weight, bias, running_mean=..., running_var=...,
training=True)`` passes the keywords to ``__init__``; ``forward`` returns y of x's shape and
updates the running arrays in place (they may be None); ``backward`` returns (dx, dγ, dβ),
dγ and dβ of shape (C,).

Check it: pytest exercises -m step6          (the reference: exercises/solutions/step6_batchnorm.py)
Read alongside: docs/walkthrough.md, section 6; tinygrad_yolo/ops/norm.py.
"""
import numpy as np  # noqa: F401

from tinygrad_yolo.function import Function

from exercises import ExerciseNotDone


class BatchNorm(Function):
    """Inputs (x, weight, bias); x is (N, C) or (N, C, H, W). Running statistics, when given,
    are updated in place (as the project's op does); they are not graph inputs."""

    def __init__(self, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
        if not training:
            raise ValueError("this exercise is batch norm in training mode (batch statistics) only")
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps = momentum, eps

    def forward(self, x, weight, bias):
        raise ExerciseNotDone("step 6: write BatchNorm.forward (batch mean and variance per "
                              "channel, x̂, γ x̂ + β; save x̂ and 1/√(var + eps))")

    def backward(self, g):
        raise ExerciseNotDone("step 6: write BatchNorm.backward (dγ = Σ g x̂, dβ = Σ g, and dx "
                              "through the mean and the variance)")
