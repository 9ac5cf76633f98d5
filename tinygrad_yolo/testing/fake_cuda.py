"""``cupy.cuda`` for fake_cupy: events, the device, the runtime's questions, the null stream and
cuBLAS (fake_cublas). There is no clock on a fake device: an event records the count of device
calls so far, and elapsed_time gives 0.001 ms per call between two events."""
import types

from . import fake_cublas
from .counting import counter


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.mark = None

    def record(self, stream=None):
        self.mark = counter.total_calls()

    def synchronize(self):
        counter.sync("event_synchronize")

    @property
    def done(self):
        return True


def get_elapsed_time(start, end):
    return 1e-3 * (end.mark - start.mark)


class Device:
    def __init__(self, device=None):
        self.id = 0

    def synchronize(self):
        counter.sync("device_synchronize")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


runtime = types.SimpleNamespace(getDeviceCount=lambda: 1,
                                deviceSynchronize=lambda: counter.sync("device_synchronize"))
Stream = types.SimpleNamespace(null=types.SimpleNamespace(
    synchronize=lambda: counter.sync("stream_synchronize"), ptr=0))
device = types.SimpleNamespace(get_cublas_handle=lambda: 0)
cublas = fake_cublas


def get_current_stream():
    return Stream.null
