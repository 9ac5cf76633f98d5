"""The training loop keeps each step's loss on the device and reads it when it logs
(training/pending.py): on the CPU nothing changes; on the CUDA path (run here through
testing/fake_cupy, NumPy standing in for CuPy) a step holds no host sync, the metrics are those of
the CPU run, and a non-finite loss is still named at its step before anything is saved."""
import json

import numpy as np
import pytest

from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc
from tinygrad_yolo.detection import YOLOv1Loss
from tinygrad_yolo.testing import fake_cupy
from tinygrad_yolo.training import loop
from tinygrad_yolo.training.pending import PendingSteps

TINY = ["--img-size", "64", "--grid", "2", "--width", "0.125", "--batch-size", "4", "--workers",
        "1", "--no-progress"]
PARTS = ("coord", "size", "obj", "noobj", "class")


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return generate_synthetic_voc(tmp_path_factory.mktemp("voc") / "data", n_train=8, n_val=4,
                                  img_size=64, seed=1, max_objects=2)


def _steps(run):
    rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r for r in rows if r["event"] == "step"]


def test_pending_steps_convert_at_once_on_the_cpu_and_in_one_copy_on_a_gpu():
    cpu = PendingSteps("cpu")
    (value, parts, info), = cpu.add(np.float32(1.5).reshape(()), {"a": np.float32(2).reshape(())},
                                    {"step": 1})
    assert (value, parts, info) == (1.5, {"a": 2.0}, {"step": 1}) and len(cpu) == 0
    with fake_cupy.installed() as cp:
        gpu = PendingSteps("cuda")
        for i in range(5):
            parts = {"a": cp.asarray(np.float32(10 * i)), "b": cp.asarray(np.float32(-i))}
            assert gpu.add(cp.asarray(np.float32(i)), parts, {"step": i}) == []
        fake_cupy.counter.reset()
        records = gpu.flush()
        assert sum(fake_cupy.counter.syncs.values()) == 1  # all fifteen values in one copy
        assert records == [(float(i), {"a": 10.0 * i, "b": -float(i)}, {"step": i})
                           for i in range(5)]
        assert gpu.flush() == []


def _count_syncs_in_steps(monkeypatch):
    per_step = []
    step = loop.Trainer.step

    def counted(self, batch):
        before = sum(fake_cupy.counter.syncs.values())
        out = step(self, batch)
        per_step.append(sum(fake_cupy.counter.syncs.values()) - before)
        return out
    monkeypatch.setattr(loop.Trainer, "step", counted)
    return per_step


def test_training_on_the_cuda_path_logs_what_the_cpu_logs_with_no_sync_inside_a_step(
        voc, tmp_path, capsys, monkeypatch):
    args = ["train", "--data", str(voc), "--steps", "4", "--log-every", "3", *TINY]
    assert main(args + ["--out", str(tmp_path / "cpu")]) == 0
    per_step = _count_syncs_in_steps(monkeypatch)
    with fake_cupy.installed():
        assert main(args + ["--out", str(tmp_path / "cuda"), "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    assert per_step == [0, 0, 0, 0]
    cpu, cuda = _steps(tmp_path / "cpu"), _steps(tmp_path / "cuda")
    assert [r["step"] for r in cuda] == [r["step"] for r in cpu] == [1, 3]
    for a, b in zip(cpu, cuda):
        assert set(a) == set(b)
        for k in ("step", "epoch", "lr", "dropped_objects", "objects"):  # host values
            assert b[k] == a[k], k
        for r in (a, b):  # each logged step's parts are its own loss's
            assert sum(r[k] for k in PARTS) == pytest.approx(r["loss"], rel=1e-5)
    # Step 1's loss is the same weights' forward on both paths: the same arithmetic in another
    # order (im2col GEMMs on the CUDA path), equal up to float32 rounding on any machine. Later
    # losses are not compared: AdamW's first updates are about lr * sign(gradient), and a gradient
    # that is zero but for rounding takes a sign that depends on the order of the sums, so the
    # two paths' weights part by about lr per step on some CPUs (19.06 against 19.13 at step 3).
    for k in ("loss", *PARTS):
        assert cuda[0][k] == pytest.approx(cpu[0][k], rel=1e-4, abs=1e-6), k
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == 4  # 2 epochs in each run


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_non_finite_loss_is_named_at_its_step_before_anything_is_saved(voc, tmp_path, capsys,
                                                                         monkeypatch, device):
    compute, calls = YOLOv1Loss.compute, []

    def poisoned(self, pred, target, responsible, iou):
        total, parts = compute(self, pred, target, responsible, iou)
        calls.append(1)
        return (total * float("nan"), parts) if len(calls) == 2 else (total, parts)
    monkeypatch.setattr(YOLOv1Loss, "compute", poisoned)
    run = tmp_path / "run"
    args = ["train", "--data", str(voc), "--steps", "4", "--log-every", "10", "--out", str(run),
            "--device", device, *TINY]
    with fake_cupy.installed():
        assert main(args) != 0
    err = capsys.readouterr().err
    assert "the loss became nan at step 2" in err and "Traceback" not in err, err
    assert not (run / "last.npz").exists() and not (run / "best.npz").exists()
    assert [r["step"] for r in _steps(run)] == [1]

