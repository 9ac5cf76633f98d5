"""The run folder: one run per folder, never two at once, nothing half-written left behind.

A new run never writes into a folder that holds files: ``runs/yolo`` taken, it becomes
``runs/yolo2``, ``runs/yolo3``, ... (as ultralytics numbers its runs), unless ``exist_ok``.
A lock file (``.lock``, an advisory ``flock`` held while the run lives) refuses a second
process in the same folder; the operating system drops it when the process dies, however it
dies. Temporary files of interrupted atomic writes are removed when a run (re)opens its folder.

    with RunFolder.create("runs/yolo") as run:    # or RunFolder.existing(...) to resume
        ...                                       # the lock is released however this ends
"""
import json
import math
import os
from pathlib import Path

from .errors import TrainError

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then advisory by its pid file alone
    fcntl = None

LOCK_NAME = ".lock"


class RunFolder:
    """A run's folder, locked while the object is open; ``run / "last.npz"`` is a path in it."""

    def __init__(self, path: Path, lock_fd: int):
        self.path = Path(path)
        self._lock_fd = lock_fd

    # ---- opening -----------------------------------------------------------------------------
    @classmethod
    def create(cls, out, exist_ok: bool = False) -> "RunFolder":
        """A fresh run folder at ``out`` or the first free ``out2``, ``out3``, ..."""
        base = Path(out)
        if base.exists() and not base.is_dir():
            raise TrainError(f"--out {base}: exists and is not a folder")
        if exist_ok:
            base.mkdir(parents=True, exist_ok=True)
            return cls(base, _lock(base))
        for k in range(1, 10000):
            path = base if k == 1 else base.with_name(f"{base.name}{k}")
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                if not path.is_dir() or any(p.name != LOCK_NAME for p in path.iterdir()):
                    continue  # another run's folder (or a file): take the next name
            try:
                fd = _lock(path)
            except TrainError:
                continue  # a run that started a moment ago holds it
            if any(p.name != LOCK_NAME for p in path.iterdir()):
                _unlock(fd)
                continue
            return cls(path, fd)
        raise TrainError(f"--out {base}: no free run folder name left")

    @classmethod
    def existing(cls, out) -> "RunFolder":
        """The run to resume: ``out`` when it holds a checkpoint, else the latest run under it."""
        path = Path(out)
        if not (path / "last.npz").is_file():
            path = latest_run(out)
        return cls(path, _lock(path))

    # ---- housekeeping ------------------------------------------------------------------------
    def clean_temp(self) -> list:
        """Remove temporary files that interrupted atomic writes left (``.name.XXXX.tmp``)."""
        removed = []
        for p in self.path.glob(".*.tmp"):
            try:
                p.unlink()
                removed.append(p.name)
            except OSError:
                pass
        return removed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None
            try:
                (self.path / LOCK_NAME).unlink()
            except OSError:
                pass

    def __truediv__(self, name):
        return self.path / name

    def __str__(self):
        return str(self.path)


def latest_run(base) -> Path:
    """The most recently written run of ``base`` (runs/yolo, runs/yolo2, ...) with a checkpoint."""
    base = Path(base)
    candidates = [p for p in base.parent.glob(base.name + "*")
                  if p.is_dir() and (p.name == base.name or p.name[len(base.name):].isdigit())
                  and (p / "last.npz").is_file()]
    if not candidates:
        raise TrainError(f"--resume: no run with a last.npz under {base}*; name it with --out")
    return max(candidates, key=lambda p: (p / "last.npz").stat().st_mtime)


def _lock(path: Path) -> int:
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise TrainError(f"run folder {path} is in use by another training (pid {pid}); wait "
                             f"for it, or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _unlock(fd: int):
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---- metrics.jsonl ---------------------------------------------------------------------------
def json_safe(value):
    """NaN and infinities become None (JSON has no NaN); NumPy scalars and arrays plain values."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, **kwargs) -> str:
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, appended and flushed line by line. A line
    half-written when a run was killed is cut off before the next run appends."""

    def __init__(self, path):
        self.path = Path(path)
        _drop_partial_line(self.path)
        self.f = open(self.path, "a", encoding="utf-8")

    def write(self, **row):
        self.f.write(dumps(row) + "\n")
        self.f.flush()

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class NoMetricsLog:
    """What a rank other than rank 0 logs to: nothing (rank 0 writes the run's files)."""

    def write(self, **row):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _drop_partial_line(path: Path):
    if not path.is_file():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def read_metrics(path) -> list:
    """The rows of a metrics.jsonl; lines that aren't whole JSON objects are skipped."""
    rows = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
