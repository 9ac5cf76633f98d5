"""Max-pool and batch norm work through large arrays in cache-sized chunks on the CPU
(tinygrad_yolo.ops.fast.workspace.chunks). Test inputs are small enough to be one chunk; tiny chunk
sizes make every sample or map (1 byte) or a few of them (3000 bytes) a chunk of its own, so
the chunk boundaries are tested too. None keeps the default size."""
import contextlib

from tinygrad_yolo.ops.fast import workspace

CHUNK_SIZES = [None, 1, 3000]


@contextlib.contextmanager
def chunks_of(chunk_bytes):
    saved = workspace.CHUNK_BYTES
    workspace.CHUNK_BYTES = saved if chunk_bytes is None else chunk_bytes
    try:
        yield
    finally:
        workspace.CHUNK_BYTES = saved
