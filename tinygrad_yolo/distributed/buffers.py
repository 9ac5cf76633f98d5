"""What keeps the ranks' models identical beyond the gradients.

With per-replica batch norm each rank's running statistics follow its own share of the batch;
averaging them every step keeps every rank's buffers equal (the rank-0 checkpoint, the moving
average of the weights and an exact resume rely on it). Integer buffers (the batch counts) are
equal already and stay untouched.
"""
import hashlib

from ..backend import to_numpy


def float_buffers(model):
    return [b for _, b in model.named_buffers() if b.data.dtype.kind == "f"]


def average_buffers(model, comm):
    """Every floating-point buffer <- its mean over the ranks (one allreduce per buffer: they are
    small, a few kB each)."""
    if comm.size == 1:
        return
    for b in float_buffers(model):
        total = b.data.copy()  # contiguous, and the buffer stays the module's
        comm.allreduce_(total)
        total /= comm.size
        b.data[...] = total


def fingerprint(model):
    """A digest of every parameter and buffer, by name, shape, dtype and bytes."""
    digest = hashlib.sha256()
    for kind, items in (("param", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in items:
            a = to_numpy(t.data)
            digest.update(f"{kind} {name} {a.shape} {a.dtype}".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()


class ModelsDiffer(RuntimeError):
    """The ranks started with different models."""


def check_same_model(model, comm):
    """Raise on every rank unless every rank holds the same weights and buffers."""
    if comm.size == 1:
        return
    prints = comm.allgather_object(fingerprint(model))
    differ = [r for r, p in enumerate(prints) if p != prints[0]]
    if differ:
        raise ModelsDiffer(f"the model on rank(s) {', '.join(map(str, differ))} differs from "
                           f"rank 0's: every rank must start from the same weights (same --seed, "
                           f"same checkpoint)")
