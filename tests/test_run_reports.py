"""What a finished run reports: COCO's mAP@[.5:.95] and mAP@0.5 beside VOC's mAP@0.5 in
metrics.json, results.csv, the per-class table and `eval`, equal to pycocotools' COCOeval on the
run's own detections; and a log written to a file (`train > log.txt 2>&1`) without progress-bar
frames."""
import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc
from tinygrad_yolo.inference import detect_split, score
from tinygrad_yolo.training import load_checkpoint, open_training_data
from tinygrad_yolo.training.config import TrainConfig
from tinygrad_yolo.training.report import Console

from test_coco_metrics import pycocotools_map, random_case  # one COCOeval bridge for the tests

EPOCHS = 30


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run whose validation images are its training images (so that it finds objects),
    trained by the command line in a subprocess whose stdout and stderr are one file."""
    root = tmp_path_factory.mktemp("reports")
    voc = generate_synthetic_voc(root / "data", n_train=8, n_val=4, img_size=64, seed=1,
                                 max_objects=2)
    main_sets = voc / "ImageSets" / "Main"
    (main_sets / "val.txt").write_text((main_sets / "train.txt").read_text())
    run, log = root / "run", root / "log.txt"
    with open(log, "w") as f:
        done = subprocess.run(
            [sys.executable, "-m", "tinygrad_yolo.cli", "train", "--data", str(voc), "--out",
             str(run), "--epochs", str(EPOCHS), "--lr", "1e-2", "--img-size", "64", "--grid", "2",
             "--width", "0.125", "--batch-size", "4", "--workers", "1", "--eval-every", "10"],
            stdout=f, stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, log.read_text()
    return run, log.read_text()


def test_a_log_written_to_a_file_has_the_epoch_lines_and_no_progress_frames(trained):
    _, log = trained
    assert "\r" not in log and "\x1b[" not in log  # no tqdm frames, no cursor movements
    lines = log.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == EPOCHS
    assert any(line.startswith("schedule") for line in lines)
    assert any(line.startswith("all ") for line in lines)


def test_a_bar_is_drawn_on_a_terminal_only(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        bar = Console(progress=True).bar(3, "steps")
        bar.update(3)
        bar.close()
        assert ("\r" in stream.getvalue()) == drawn
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = Console(progress=False).bar(3, "steps")  # --no-progress
    bar.update(3)
    bar.close()
    assert terminal.getvalue() == ""


def pycocotools_per_class(detections, truths, num_classes):
    """Per class AP@[.5:.95] by COCOeval, one class at a time (a class's AP is the mAP of the
    data kept to it)."""
    out = []
    for c in range(num_classes):
        if not any(np.any(t[:, 4] == c) for t in truths):
            out.append(None)
            continue
        only = [d[d[:, 5] == c] for d in detections], [t[t[:, 4] == c] for t in truths]
        out.append(pycocotools_map(*only, num_classes)[0])
    return out


def run_detections(run):
    """The detections the final evaluation scored: best.npz on the run's validation split."""
    model, ckpt = load_checkpoint(run / "best.npz")
    cfg = TrainConfig(data=ckpt["data"]["path"], classes=ckpt["classes"])
    val = open_training_data(cfg, ckpt["data"]).val
    val.draft_size = 2 * model.img_size
    return detect_split(model, val, workers=1), model.C


def test_the_final_evaluation_reports_cocos_numbers_as_pycocotools_computes_them(trained):
    run, log = trained
    metrics = json.loads((run / "metrics.json").read_text())
    (detections, truths, difficult), C = run_detections(run)
    assert sum(len(d) for d in detections) > 0 and metrics["map50"] > 0
    mean, at_half = pycocotools_map(detections, truths, C)
    assert metrics["map50_95"] == pytest.approx(mean, abs=1e-6)
    assert metrics["map50_coco"] == pytest.approx(at_half, abs=1e-6)
    for ours, theirs in zip(metrics["ap50_95"], pycocotools_per_class(detections, truths, C)):
        assert (ours is None) == (theirs is None)
        assert ours is None or ours == pytest.approx(theirs, abs=1e-6)
    # the printed table's "all" row: VOC's AP@0.5, COCO's AP@0.5, COCO's AP@[.5:.95]
    header = next(line for line in log.splitlines() if line.startswith("class "))
    assert header.split()[-3:] == ["AP@0.5", "COCO@0.5", "COCO@.5:.95"]
    row = next(line for line in log.splitlines() if line.startswith("all "))
    assert row.split()[-3:] == [f"{metrics[k]:.3f}" for k in ("map50", "map50_coco", "map50_95")]
    summary = json.loads(log.strip().splitlines()[-1])
    assert summary["map50_95"] == round(metrics["map50_95"], 4)


def test_results_csv_has_cocos_numbers_at_every_validation(trained):
    run, _ = trained
    rows = list(csv.DictReader(open(run / "results.csv")))
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    validated = {e["epoch"]: e for e in events if e["event"] == "epoch" and e["map50"] is not None}
    assert len(rows) == EPOCHS and sorted(validated) == [10, 20, 30]
    for row in rows:
        e = validated.get(int(row["epoch"]))
        for key in ("map50", "map50_coco", "map50_95"):
            value = row["val_" + key]
            assert value == "" if e is None else float(value) == pytest.approx(e[key], abs=1e-12)
    final = next(e for e in events if e["event"] == "eval")
    metrics = json.loads((run / "metrics.json").read_text())
    assert final["map50_95"] == metrics["map50_95"] and final["map50_coco"] == metrics["map50_coco"]


def test_eval_reports_the_same_numbers(trained, capsys):
    run, _ = trained
    metrics = json.loads((run / "metrics.json").read_text())
    assert main(["eval", "--weights", str(run / "best.npz"), "--workers", "1", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("map50", "map50_11pt", "map50_coco", "map50_95", "ap50_95", "ap50_coco"):
        assert again[key] == metrics[key], key
    assert main(["eval", "--weights", str(run / "best.npz"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "COCO@.5:.95" in out and f"{metrics['map50_95']:.3f}" in out


@pytest.mark.parametrize("seed", range(4))
def test_score_gives_cocos_numbers_on_random_detections(seed):
    detections, truths = random_case(np.random.default_rng(seed), n_images=8, num_classes=3)
    difficult = [np.zeros(len(t), bool) for t in truths]
    metrics = score(detections, truths, difficult, 3)
    mean, at_half = pycocotools_map(detections, truths, 3)
    assert metrics["map50_95"] == pytest.approx(mean, abs=1e-6)
    assert metrics["map50_coco"] == pytest.approx(at_half, abs=1e-6)
    for ours, theirs in zip(metrics["ap50_95"], pycocotools_per_class(detections, truths, 3)):
        assert (ours is None) == (theirs is None)
        assert ours is None or ours == pytest.approx(theirs, abs=1e-6)
