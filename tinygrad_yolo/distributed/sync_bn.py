"""Batch norm with the statistics of the global batch (``train --sync-bn``).

Each rank computes its share's (count, mean, M2 = Σ (x - mean)²) per channel; the ranks'
triples are combined in float64, in rank order, with Chan et al.'s pairwise rule

    n = na + nb    δ = mean_b - mean_a    mean = mean_a + δ·nb/n    M2 = M2a + M2b + δ²·na·nb/n

(never E[x²] - mean², which cancels catastrophically when the mean is large against the
spread). Every rank gets the same mean and variance, so the same running statistics.

The backward needs two global sums, Σ g and Σ g·(x - mean) (ops/norm.py's compact dx); each
rank adds its own and one allreduce sums them. dγ and dβ stay the rank's own: the gradient
averaging after the backward (gradients.py) takes their mean like any other gradient's.

The exchanges are allreduces (a rank's triple in its own row of zeros, so the sum gathers
them), which NCCL does on the GPU without a trip through the host.
"""
from ..backend import array_module, to_device
from ..function import Function
from ..nn import BatchNorm2d
from ..ops.fast.norm import centre, channel_sum, scale_shift, sums, training_dx
from ..ops.norm import check_batch_norm_args


def combine_statistics(counts, means, m2s):
    """(count, mean, M2) of the union of groups with the given per-group values (float64),
    combined in the order given."""
    n, mean, m2 = counts[0], means[0], m2s[0]
    for nb, mean_b, m2b in zip(counts[1:], means[1:], m2s[1:]):
        total = n + nb
        delta = mean_b - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta * delta * (n * nb / total)
        n = total
    return n, mean, m2


def global_statistics(x3, comm):
    """(count, mean, M2) per channel over every rank's (N, C, L) ``x3``, float64."""
    xp = array_module(x3)
    C, n = x3.shape[1], x3.shape[0] * x3.shape[2]
    mean = channel_sum(x3) / n
    _, m2 = centre(x3, mean)
    rows = xp.zeros((comm.size, 1 + 2 * C), dtype="float64")
    rows[comm.rank, 0] = n
    rows[comm.rank, 1:1 + C] = mean
    rows[comm.rank, 1 + C:] = m2
    comm.allreduce_(rows)
    return combine_statistics([float(c) for c in to_device(rows[:, 0], "cpu")],
                              list(rows[:, 1:1 + C]), list(rows[:, 1 + C:]))


class SyncBatchNorm(Function):
    """Training-mode batch norm over the global batch of the ranks of ``comm``; inputs
    (x, weight, bias); running statistics (or None) updated in place as BatchNorm does."""

    def __init__(self, comm, running_mean=None, running_var=None, momentum=0.1, eps=1e-5):
        self.comm, self.running_mean, self.running_var = comm, running_mean, running_var
        self.momentum, self.eps = momentum, eps

    def forward(self, x, weight, bias):
        xp = array_module(x)
        N, C = check_batch_norm_args(x, weight, bias, self.running_mean, self.running_var)
        x3 = x.reshape(N, C, -1)
        m, mean, m2 = global_statistics(x3, self.comm)
        if m <= 1:
            raise ValueError(f"sync batch_norm: expected more than 1 value per channel when "
                             f"training, got {m:g} over all ranks")
        var = m2 / m
        if self.running_mean is not None:
            self.running_mean *= 1 - self.momentum
            self.running_mean += (self.momentum * mean).astype(self.running_mean.dtype)
        if self.running_var is not None:  # unbiased, as BatchNorm stores it
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * m / (m - 1) * var).astype(self.running_var.dtype)
        self.xc, _ = centre(x3, mean.astype(x.dtype))
        self.inv_std = (1 / xp.sqrt(var + self.eps)).astype(x.dtype)
        self.weight, self.shape, self.m = weight, x.shape, m
        self.running_mean = self.running_var = None  # not saved for backward
        return scale_shift(self.xc, weight * self.inv_std, bias).reshape(x.shape)

    def backward(self, g):
        xp = array_module(g)
        g3 = g.reshape(self.xc.shape)
        sum_g, sum_gxc = sums(g3, self.xc)  # this rank's: dβ and dγ are its own
        dx = None
        if self.needs_input_grad[0]:
            C = g3.shape[1]
            both = xp.concatenate([xp.asarray(sum_g).reshape(C), xp.asarray(sum_gxc).reshape(C)])
            self.comm.allreduce_(both)
            total_g, total_gxc = both[:C], both[C:]
            scale = self.weight * self.inv_std
            xc_scale = scale * self.inv_std * self.inv_std * (total_gxc / self.m)
            const = scale * (total_g / self.m)
            dx = training_dx(g3, self.xc, scale, xc_scale, const).reshape(self.shape)
        return (dx, sum_gxc * self.inv_std if self.needs_input_grad[1] else None,
                sum_g if self.needs_input_grad[2] else None)


class SyncBatchNorm2d(BatchNorm2d):
    """BatchNorm2d whose training statistics are the global batch's (eval mode: unchanged)."""
    fusable = False  # bn_act composes bn, the residual and the ReLU (the fused kernel is per rank)
    comm = None

    def forward(self, x, residual=None, relu=False):
        if not self.training or self.comm is None or self.comm.size == 1:
            return super().forward(x, residual, relu)
        self._check_input(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        stats = (None, None) if not self.track_running_stats else (self.running_mean.data,
                                                                    self.running_var.data)
        y = SyncBatchNorm.apply(x, self.weight, self.bias, comm=self.comm, running_mean=stats[0],
                                running_var=stats[1], momentum=momentum, eps=self.eps)
        if residual is not None:
            y = y + residual
        return y.relu() if relu else y


def use_sync_batch_norm(model, comm):
    """Make every BatchNorm2d of ``model`` a SyncBatchNorm2d over ``comm``, in place (the same
    parameters and buffers: state_dict and checkpoints don't change). Returns the model."""
    for module in model.modules():
        if type(module) is BatchNorm2d and module.affine:
            module.__class__ = SyncBatchNorm2d
            module.comm = comm
    return model
