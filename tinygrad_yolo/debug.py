"""Instruments for watching the engine work: a per-op profiler and anomaly mode.

    with tg.profile() as prof:        # or run any script with TINYGRAD_YOLO_PROFILE=1
        loss = model(x).sum(); loss.backward()
    print(prof.table())               # time per op type, forward and backward

    with tg.detect_anomaly():         # the first op whose forward or backward
        ...                           # produces NaN/Inf raises, naming the op and where it was made

Both are observers on Function.apply and Tensor.backward (Function._observers);
with none installed the engine pays one list check per op.
"""
import atexit
import os
import sys
import time
import traceback
from collections import defaultdict

from .backend import array_module, is_cuda_array, synchronize
from .function import Function


class Observer:
    """Watches every op while active (``with``): the hooks Function.apply and Tensor.backward
    call around each forward and backward. Subclasses override the ones they need."""

    def __enter__(self):
        Function._observers.append(self)
        return self

    def __exit__(self, *exc):
        Function._observers.remove(self)

    def before_forward(self, fn, inputs): pass
    def after_forward(self, fn, inputs, out): pass
    def before_backward(self, fn, grad): pass
    def after_backward(self, fn, grads): pass


class Profiler(Observer):
    """Times every op's forward and backward; ``verbose`` prints each one as it runs.

    On the CPU each op is timed with the host clock. On CUDA an op's kernels are queued, not run,
    when the op returns, so a host clock would need a synchronisation before and after every op
    -- which serialises the GPU with Python and makes the ops add up to more than the step. There
    the profiler records a CUDA event on the stream before and after each op instead, and reads
    the times between them once, when ``rows()`` or ``table()`` asks (one wait at the end). A
    verbose line on CUDA shows the op when it is queued; its time is in the table."""

    def __init__(self, verbose=False, stream=None):
        self.verbose, self.stream = verbose, stream or sys.stderr
        # op -> [forward calls, forward seconds, backward calls, backward seconds]
        self.stats = defaultdict(lambda: [0, 0.0, 0, 0.0])
        self._t0 = {}
        self._events = []  # (op, 1 forward | 3 backward, start event, end event) not read yet

    @staticmethod
    def _cuda(a):
        """CuPy when ``a`` is a CUDA array (events time it), else None (the host clock does)."""
        return array_module(a) if a is not None and is_cuda_array(a) else None

    def _start(self, key, name, a):
        cp = self._cuda(a)
        if cp is not None:
            event = cp.cuda.Event()
            event.record()
            self._t0[key] = (cp, event, name)
        else:
            synchronize(a)
            self._t0[key] = (None, time.perf_counter(), name)

    def _stop(self, key, slot, a):
        """Count the op; returns its seconds (host clock) or None (a CUDA event pair, read
        later)."""
        cp, start, name = self._t0.pop(key)
        s = self.stats[name]
        s[slot - 1] += 1
        if cp is not None:
            end = cp.cuda.Event()
            end.record()
            self._events.append((name, slot, start, end, cp))
            return None
        synchronize(a)
        dt = time.perf_counter() - start
        s[slot] += dt
        return dt

    def _read_events(self):
        if not self._events:
            return
        events, self._events = self._events, []
        events[-1][3].synchronize()  # the last op's end: all of them have happened
        for name, slot, start, end, cp in events:
            self.stats[name][slot] += cp.cuda.get_elapsed_time(start, end) / 1e3

    def _say(self, kind, name, dt, tail=""):
        if self.verbose:
            when = "  (queued)" if dt is None else f"{dt * 1e3:8.3f} ms"
            print(f"[tg] {kind} {name:<14} {when}{tail}", file=self.stream)

    def before_forward(self, fn, inputs):
        self._start(id(fn), fn.name, inputs[0].data if inputs else None)

    def after_forward(self, fn, inputs, out):
        dt = self._stop(id(fn), 1, out.data)
        self._say("fwd", fn.name, dt, f"  -> {tuple(out.shape)} {out.dtype}")

    def before_backward(self, fn, grad):
        self._start(id(fn), fn.name, grad)

    def after_backward(self, fn, grads):
        name = self._t0[id(fn)][2]
        dt = self._stop(id(fn), 3, next((g for g in grads if g is not None), None))
        self._say("bwd", name, dt)

    def rows(self):
        """[(op, forward calls, forward ms, backward calls, backward ms)], slowest first."""
        self._read_events()
        rows = [(op, s[0], s[1] * 1e3, s[2], s[3] * 1e3) for op, s in self.stats.items()]
        return sorted(rows, key=lambda r: -(r[2] + r[4]))

    def table(self):
        rows = self.rows()
        total = sum(r[2] + r[4] for r in rows) or 1.0
        lines = [f"{'op':<16}{'calls':>7}{'fwd ms':>10}{'bwd ms':>10}{'share':>8}"]
        for op, fc, fms, bc, bms in rows:
            lines.append(f"{op:<16}{fc:>7}{fms:>10.2f}{bms:>10.2f}{(fms + bms) / total:>8.1%}")
        forward, backward = sum(r[2] for r in rows), sum(r[4] for r in rows)
        lines.append(f"{'total':<16}{'':>7}{forward:>10.2f}{backward:>10.2f}")
        return "\n".join(lines)


def profile(verbose=False):
    """``with tg.profile() as p: ...`` then ``print(p.table())``."""
    return Profiler(verbose=verbose)


class AnomalyError(FloatingPointError):
    """An op produced NaN or Inf."""


def _where_created():
    """The first stack frame outside this package: the user's line that made the op."""
    package = os.path.dirname(os.path.abspath(__file__))
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(package):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "inside tinygrad_yolo"


def _finite(a):
    if a.dtype.kind not in "fc":
        return True
    return bool(array_module(a).isfinite(a).all())


class detect_anomaly(Observer):
    """Raise at the first op whose forward output or backward gradient is not finite."""

    def after_forward(self, fn, inputs, out):
        where = _where_created()
        fn._created_at = where
        if not _finite(out.data):
            raise AnomalyError(f"forward of {fn.name} (created at {where}) produced NaN or Inf "
                               f"(output shape {tuple(out.shape)})")

    def after_backward(self, fn, grads):
        for i, g in enumerate(grads):
            if g is not None and not _finite(g):
                where = getattr(fn, "_created_at", "unknown (made before detect_anomaly was on)")
                raise AnomalyError(f"backward of {fn.name} (created at {where}) produced NaN or "
                                   f"Inf in the gradient of input {i}")


PROFILE_ENV = "TINYGRAD_YOLO_PROFILE"


def _switched_on(name):
    return os.environ.get(name, "0") not in ("", "0")


if _switched_on(PROFILE_ENV):
    # TINYGRAD_YOLO_PROFILE=1: print every op as it runs, and the summary table at exit.
    _debug_profiler = Profiler(verbose=True)
    Function._observers.append(_debug_profiler)
    atexit.register(lambda: print(_debug_profiler.table(), file=sys.stderr))
elif _switched_on("DEBUG"):
    # DEBUG is a name many tools read, so it does not switch the profiler on: saying where the
    # profiler's own switch is helps whoever set it expecting one.
    print(f"tinygrad_yolo: DEBUG is ignored; set {PROFILE_ENV}=1 for the per-op profiler",
          file=sys.stderr)
