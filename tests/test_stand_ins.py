"""The GPU stand-ins (tinygrad_yolo/testing/) stay out of the package's way: no module outside
testing/ imports them, they import one another without a circle, they take CuPy's place through
backend.use_cupy alone (no private name of backend), and the launch counter runs as a module."""
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo import backend
from tinygrad_yolo.testing import fake_cupy
from test_layering import imported_modules  # one import walker for the layering checks

PACKAGE = Path(tg.__file__).resolve().parent
TESTING = PACKAGE / "testing"


def test_no_package_module_outside_testing_imports_a_stand_in():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if TESTING in path.parents:
            continue
        bad = [m for m in imported_modules(path)
               if m.startswith("tinygrad_yolo.testing") or "fake_" in m.split(".")[-1]]
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE)}: {sorted(bad)}")
    assert not offenders, offenders


def test_the_stand_ins_import_one_another_without_a_circle():
    own = {p.stem: p for p in TESTING.glob("*.py") if p.stem != "__init__"}
    uses = {name: {m.rsplit(".", 1)[-1] for m in imported_modules(path)
                   if m.startswith("tinygrad_yolo.testing.") and m.rsplit(".", 1)[-1] in own}
            for name, path in own.items()}
    done, in_progress = set(), []

    def visit(name):
        assert name not in in_progress, f"import circle: {' -> '.join(in_progress + [name])}"
        if name in done:
            return
        in_progress.append(name)
        for other in sorted(uses[name]):
            visit(other)
        in_progress.pop()
        done.add(name)
    for name in sorted(own):
        visit(name)


def test_the_stand_ins_touch_no_private_name_of_backend():
    for path in TESTING.glob("*.py"):
        assert "backend._" not in path.read_text(encoding="utf-8"), path


def test_use_cupy_runs_cuda_on_the_stand_in_and_restores_what_was_there():
    before = tg.cuda.is_available()
    with backend.use_cupy(fake_cupy) as cp:
        assert cp is fake_cupy and tg.cuda.is_available()
        x = tg.Tensor(np.arange(3.0), device="cuda")
        assert x.device == "cuda" and backend.array_module(x.data) is fake_cupy
        np.testing.assert_array_equal((x * 2).numpy(), [0.0, 2.0, 4.0])
    assert tg.cuda.is_available() is before


def test_the_launch_counter_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "tinygrad_yolo.testing.launch_count", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--img" in out.stdout, out.stderr
