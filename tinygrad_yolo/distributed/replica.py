"""A model trained data-parallel: what a training step adds, in one object, so that the loop
gains two lines (``parallel.exchange()`` after the backward, ``parallel.agree(...)`` when it
reads the loss).

    parallel = DataParallel(model, comm, sync_bn=cfg.sync_bn)   # models checked equal
    ...
    loss.backward()
    parallel.exchange()        # gradients averaged; per-replica batch-norm statistics averaged
    opt.step()

At one rank every call returns at once and the step is today's.
"""
from .agreement import agree_step
from .buffers import average_buffers, check_same_model
from .gradients import GradientBuckets, average_gradients
from .sync_bn import use_sync_batch_norm


class DataParallel:
    """``model`` on the ranks of ``comm``. ``sync_bn``: batch norm over the global batch, else
    per rank with the running statistics averaged every step. ``buckets``: gradients exchanged
    in buckets started during the backward (else one flat buffer after it)."""

    def __init__(self, model, comm, sync_bn=False, buckets=False, bucket_bytes=1 << 20):
        self.model, self.comm, self.sync_bn = model, comm, sync_bn
        if sync_bn:
            use_sync_batch_norm(model, comm)
        check_same_model(model, comm)
        params = list(model.parameters())
        self.params = params
        self.buckets = GradientBuckets(params, comm, bucket_bytes) if buckets else None
        self.flat = None

    def exchange(self):
        """After the backward: every rank's gradients become the mean over the ranks."""
        if self.comm.size == 1:
            return
        if self.buckets is not None:
            self.buckets.finish()
        else:
            self.flat = average_gradients(self.params, self.comm, self.flat)
        if not self.sync_bn:
            average_buffers(self.model, self.comm)

    def agree(self, loss, parts=None, stop=False, counts=None):
        """The step's decisions taken together (agreement.py): mean losses, stop, non-finite,
        counts summed."""
        return agree_step(self.comm, loss, parts, stop, counts)
