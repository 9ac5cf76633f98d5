"""Fused losses: one node with a closed-form gradient (stabler and faster than a chain)."""
from ..backend import array_module
from ..function import Function


class CrossEntropy(Function):
    """Mean (or sum) of -log softmax(logits)[target] over a batch of class indices."""

    def __init__(self, target, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.target, self.reduction = target, reduction

    def forward(self, logits):
        xp = array_module(logits)
        t = self.target
        if logits.ndim != 2 or t.shape != (logits.shape[0],):
            raise ValueError(f"cross_entropy expects logits (N, C) and target (N,), got "
                             f"{logits.shape} and {t.shape}")
        if t.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy target must hold integer class indices, "
                            f"got dtype {t.dtype}")
        if self.reduction == "mean" and len(t) == 0:
            raise ValueError("cross_entropy: the batch is empty, so its mean is undefined "
                             "(use reduction='sum')")
        if t.size and (int(t.min()) < 0 or int(t.max()) >= logits.shape[1]):
            raise ValueError(f"cross_entropy target has class indices outside "
                             f"[0, {logits.shape[1]})")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.log_probs = log_probs
        loss = -log_probs[xp.arange(len(t)), t].sum()
        self.scale = 1.0 / len(t) if self.reduction == "mean" else 1.0
        return loss * self.scale

    def backward(self, g):
        xp = array_module(g)
        grad = xp.exp(self.log_probs)  # softmax
        grad[xp.arange(len(self.target)), self.target] -= 1
        return grad * (g * self.scale)
