"""Batch normalisation modules.

Training mode normalises with the batch's statistics and updates the running
estimates (momentum-weighted, unbiased variance, as PyTorch); eval mode uses the
running estimates. The running statistics are buffers: saved in state_dict and
moved by ``to(device)``, never trained.
"""
import numpy as np

from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _expected_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.empty(self.num_features, dtype=np.float32))
            self.bias = Parameter(np.empty(self.num_features, dtype=np.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input(self, x):
        if x.ndim not in self._expected_dims or x.shape[1] != self.num_features:
            dims = " or ".join(f"{d}-d" for d in self._expected_dims)
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects {dims} input "
                             f"with {self.num_features} channels in dimension 1, got shape "
                             f"{tuple(x.shape)}")

    def _batch_norm_4d(self, x, residual=None, relu=False):
        use_batch_stats = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:  # cumulative moving average over all batches seen
                momentum = 1.0 / float(self.num_batches_tracked.item())
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch_stats, momentum=momentum, eps=self.eps,
                            residual=residual, relu=relu)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """BatchNorm over (N, H, W) for each channel of an NCHW input. ``residual`` and ``relu`` give
    relu(bn(x) + residual), fused into one op on CUDA (nn/fused.py's bn_act uses them)."""
    _expected_dims = (4,)
    fusable = True

    def forward(self, x, residual=None, relu=False):
        self._check_input(x)
        return self._batch_norm_4d(x, residual, relu)


class BatchNorm1d(_BatchNorm):
    """BatchNorm over N (and L) for each feature of an (N, C) or (N, C, L) input."""
    _expected_dims = (2, 3)

    def forward(self, x):
        self._check_input(x)
        shape = x.shape
        # (N, C[, L]) -> (N, C, L, 1): the same per-channel statistics as the 4-d op computes.
        y = self._batch_norm_4d(x.reshape(shape[0], shape[1], -1, 1))
        return y.reshape(shape)
