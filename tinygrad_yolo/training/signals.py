"""Ctrl-C and SIGTERM stop a run at a step boundary, never in the middle of one.

The first signal only raises a flag: the step under way finishes (its forward, backward, optimizer
and batch-norm updates all happen or none do), the loop writes the checkpoint and exits. A
second signal exits at once (KeyboardInterrupt): the checkpoint on disk is the previous one,
whole, since every write is atomic.
"""
import signal
import threading

NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Stopped(Exception):
    """The run stopped on a signal after saving its checkpoint; ``code`` is the exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


class StopOnSignal:
    def __init__(self, notify=None):
        self.signum = None
        self.notify = notify
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def __call__(self):
        return self.requested

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt  # the second signal: out at once
        self.signum = signum
        if self.notify is not None:
            self.notify(f"{NAMES.get(signum, signum)}: stopping after this step to save the "
                        f"checkpoint (press Ctrl-C again to quit at once)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for s in NAMES:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False

    @property
    def name(self):
        return NAMES.get(self.signum, str(self.signum))

    @property
    def code(self):
        return EXIT_CODES.get(self.signum, 1)
