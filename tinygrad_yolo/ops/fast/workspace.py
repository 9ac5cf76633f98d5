"""Reusable scratch memory for the CPU paths (conv tiles, padded copies, transposes).

Why: on these machines the first touch of freshly allocated memory runs at ~0.4 GB/s
(page faults), against ~20 GB/s for memory that is reused; arrays over 32 MB are always
fresh mmaps under glibc. So a conv that allocates its im2col buffer anew on every call
spends more time faulting pages in than multiplying. ``scratch(name, shape, dtype)``
hands out a view of one growing byte buffer per name, so every call (and every layer)
reuses the same memory.

Rules for callers: a scratch array is valid only until the next ``scratch`` call with
the same name, so it is for temporaries inside one forward or backward call. Never
return one as an op's output or gradient (the engine keeps those), and never save one
for backward. Buffers are per thread. (On CUDA, CuPy's memory pool already reuses memory.)
"""
import math
import threading

import numpy as np

_local = threading.local()


def _buffers():
    bufs = getattr(_local, "buffers", None)
    if bufs is None:
        bufs = _local.buffers = {}
    return bufs


def scratch(name, shape, dtype):
    """An uninitialised NumPy array of ``shape`` backed by the reusable buffer ``name``."""
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    # math.prod, not np.prod: this runs ~600 times a step, and NumPy's reduce costs 10 µs
    count = math.prod(shape)
    nbytes = max(count, 1) * dtype.itemsize
    bufs = _buffers()
    buf = bufs.get(name)
    if buf is None or buf.nbytes < nbytes:
        # Grow with headroom so a slightly larger layer doesn't fault a new buffer in again.
        buf = bufs[name] = np.empty(nbytes + nbytes // 8, dtype=np.uint8)
    return buf[:nbytes].view(dtype)[:count].reshape(shape)


# Ops that make several passes over one large array (max-pool, batch norm) go through it in
# chunks that stay in the cache from one pass to the next, so only the first pass reads main
# memory. A NumPy pass over an array in cache runs ~3x faster than over one in memory; chunks
# much smaller than this lose the gain again to NumPy's per-call overhead.
CHUNK_BYTES = 4 * 1024 * 1024


def chunks(n, item_bytes):
    """Split n items of ``item_bytes`` each into [(a, b), ...] runs of about CHUNK_BYTES."""
    per = max(1, CHUNK_BYTES // max(1, item_bytes))
    return [(a, min(n, a + per)) for a in range(0, n, per)]


def nbytes_held():
    """Bytes held by this thread's scratch buffers."""
    return sum(b.nbytes for b in _buffers().values())


def clear():
    """Release this thread's scratch buffers (they are re-created on demand)."""
    _buffers().clear()
