"""Gradient averaging across ranks.

Every rank's loss is the mean over its share of the global batch, so the mean of the ranks'
gradients is the gradient of the global batch's loss. Two ways to exchange them, the same sums:

* ``average_gradients``: after the backward, every gradient is copied into one flat buffer
  (one per dtype), summed over the ranks in one allreduce, divided by the number of ranks and
  copied back: the reference, and ChainerMN's way.
* ``GradientBuckets``: PyTorch DDP's way. The parameters are split into buckets of about
  ``bucket_bytes``, last layers first (the order the backward reaches them); a parameter's
  gradient hook copies its gradient into its bucket, and a full bucket's allreduce starts in the
  background while the backward goes on. Buckets start in index order only, so that every rank
  starts the same collectives in the same order (MPI's rule).

A parameter that got no gradient this step counts as a zero gradient (so the ranks still agree
on one buffer layout) and ends with a zero ``.grad``.
"""
from ..backend import array_module
from ..tensor import Tensor


class FlatGradients:
    """The gradients of ``params`` (one dtype, one device) as slices of one reused array."""

    def __init__(self, params):
        self.params = list(params)
        xp = array_module(self.params[0].data)
        self.offsets = [0]
        for p in self.params:
            self.offsets.append(self.offsets[-1] + p.data.size)
        self.array = xp.zeros(self.offsets[-1], dtype=self.params[0].data.dtype)
        self.filled = [False] * len(self.params)

    def slot(self, i):
        return self.array[self.offsets[i]:self.offsets[i + 1]]

    def put(self, i, grad):
        self.slot(i)[...] = grad.reshape(-1)
        self.filled[i] = True

    def gather(self):
        """Every parameter's .grad into the buffer (zeros where there is none)."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.put(i, p.grad.data)
        self.zero_missing()

    def zero_missing(self):
        for i, done in enumerate(self.filled):
            if not done:
                self.slot(i)[...] = 0

    def scatter(self, ranks):
        """buffer / ranks into every parameter's .grad; the buffer is ready for the next step."""
        self.array /= ranks
        for i, p in enumerate(self.params):
            mean = self.slot(i).reshape(p.shape)
            grad = None if p.grad is None else p.grad.data
            if grad is not None and getattr(grad.flags, "writeable", True):  # (CuPy's: always)
                grad[...] = mean
            else:
                p.grad = Tensor(mean.copy(), device=p.device)
        self.filled = [False] * len(self.params)


def split_by_dtype(params, bucket_bytes=None):
    """Runs of consecutive parameters with one dtype and device, each at most ``bucket_bytes``
    (a parameter larger than that gets a run of its own); None: no size limit."""
    runs, current, size = [], [], 0
    for p in params:
        key = (str(p.data.dtype), p.device)
        full = bucket_bytes is not None and current and size + p.data.nbytes > bucket_bytes
        if current and (full or key != (str(current[0].data.dtype), current[0].device)):
            runs.append(current)
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
    return runs + ([current] if current else [])


def trainable(params):
    return [p for p in params if p.requires_grad]


def average_gradients(params, comm, buffers=None):
    """Every parameter's .grad <- its mean over the ranks, through one flat buffer per dtype.
    ``buffers``: the list returned by the previous call (reused, so no buffer is made anew each
    step). Returns the buffers. At one rank, nothing happens."""
    if comm.size == 1:
        return buffers
    if buffers is None:
        buffers = [FlatGradients(run) for run in split_by_dtype(trainable(params))]
    for flat in buffers:
        flat.gather()
        comm.allreduce_(flat.array)
        flat.scatter(comm.size)
    return buffers


class GradientBuckets:
    """Gradients averaged in buckets started from the gradient hooks during the backward.
    Call ``finish()`` after each ``loss.backward()``; ``remove()`` takes the hooks away.
    One backward per step: a bucket holds the gradient of the latest backward only."""

    def __init__(self, params, comm, bucket_bytes=1 << 20):
        self.comm = comm
        params = trainable(params)
        self.buckets = [FlatGradients(run) for run in split_by_dtype(params[::-1], bucket_bytes)]
        self.where = {id(p): (k, i) for k, bucket in enumerate(self.buckets)
                      for i, p in enumerate(bucket.params)}
        self.handles = [p.register_hook(self._hook(p)) for p in params] if comm.size > 1 else []
        self.started, self.launched = [], 0

    def _hook(self, p):
        k, i = self.where[id(p)]

        def copy_into_bucket(grad):
            bucket = self.buckets[k]
            bucket.put(i, grad.data)
            while self.launched < len(self.buckets) and all(self.buckets[self.launched].filled):
                self.started.append(self.comm.start_allreduce_(self.buckets[self.launched].array))
                self.launched += 1
        return copy_into_bucket

    def finish(self):
        """Start the buckets the backward left (parameters without a gradient count as zero),
        wait for all, and write the means into the parameters' .grad."""
        if self.comm.size == 1:
            return
        for bucket in self.buckets[self.launched:]:
            bucket.zero_missing()
            bucket.filled = [True] * len(bucket.params)
            self.started.append(self.comm.start_allreduce_(bucket.array))
        for handle in self.started:
            handle.wait()
        for bucket in self.buckets:
            bucket.scatter(self.comm.size)
        self.started, self.launched = [], 0

    def remove(self):
        for handle in self.handles:
            handle.remove()
        self.handles = []
