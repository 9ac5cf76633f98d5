"""Keep freed memory in the process for reuse: glibc malloc tuning for training on the CPU.

Why: a training step allocates and frees the same large arrays every step (activations,
gradients, batches). glibc hands blocks above its mmap threshold (at most 32 MB, adjusted as it
goes) straight back to the kernel when freed, so the next step's arrays are fresh pages that
the kernel must fault in and zero again. Raising the threshold and the trim threshold keeps
those blocks in the heap, where malloc recycles them, for a somewhat higher peak memory (freed
blocks are kept, not returned). docs/performance.md has the faults, time and memory measured.

This changes how the whole process allocates, so the package never does it on import: the
`tinygrad-yolo` command and benchmarks/bench_step.py call ``keep_freed_memory()``, and a
script of yours may too.
"""
import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold=1 << 30, trim_threshold=1 << 30):
    """Ask glibc's malloc to serve blocks up to ``mmap_threshold`` bytes from its heap and to keep
    up to ``trim_threshold`` free bytes there. Returns True if applied, False where malloc is not
    glibc's (macOS, Windows, musl) or refused the values."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and ok)
