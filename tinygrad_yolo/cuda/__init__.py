"""``tg.cuda``: PyTorch's ``torch.cuda`` questions, answered through backend.py.

    tg.cuda.is_available()   # CuPy importable and a GPU present (CuPy is imported on first ask)
    tg.cuda.device_count()   # 0 without one
    tg.cuda.synchronize()    # wait for queued GPU work (a no-op without CuPy)
"""
from .. import backend


def is_available():
    return backend.cuda_available()


def device_count():
    if not backend.cuda_available():
        return 0
    return int(backend.cupy_module().cuda.runtime.getDeviceCount())


def synchronize():
    backend.synchronize()
