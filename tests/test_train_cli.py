"""train / eval / detect end to end on a tiny synthetic set: outputs, exact resume, clear errors."""
import json

import numpy as np
import pytest
from PIL import Image

import tinygrad_yolo as tg
from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc

TINY = ["--img-size", "64", "--grid", "2", "--width", "0.125", "--batch-size", "4", "--workers", "1",
        "--no-progress"]


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return generate_synthetic_voc(tmp_path_factory.mktemp("voc") / "data", n_train=8, n_val=4, img_size=64,
                                  seed=1, max_objects=2)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_every_output_and_loss_falls(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), "--out", str(run), "--epochs", "8", "--lr", "3e-3", *TINY]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("last.npz", "metrics.jsonl", "metrics.json", "loss.png", "val_0.jpg"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["map50"] <= 1.0 and summary["map50"] == round(metrics["map50"], 4)
    assert len(metrics["ap"]) == 20 and metrics["steps"] == 16
    losses = [r["loss"] for r in _rows(run) if r["event"] == "step"]
    assert losses[-1] < 0.5 * losses[0], losses

    # eval and detect on the checkpoint just written
    assert main(["eval", "--weights", str(run / "last.npz"), "--data", str(voc), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "mAP@0.5" in out and "red_circle" in out
    image = next((voc / "JPEGImages").glob("*.jpg"))
    assert main(["detect", "--weights", str(run / "last.npz"), str(image), "--out", str(tmp_path / "det"),
                 "--conf", "0.0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["image"] == str(image) and (tmp_path / "det" / f"{image.stem}_detections.jpg").is_file()
    assert all(set(d) == {"class", "score", "box"} for d in result[0]["detections"])


def test_resume_continues_exactly(voc, tmp_path):
    common = ["--data", str(voc), *TINY, "--eval-max-images", "4"]
    assert main(["train", *common, "--out", str(tmp_path / "straight"), "--epochs", "2"]) == 0
    # stopped after 3 steps (mid-epoch 2, as Ctrl-C would), then resumed
    assert main(["train", *common, "--out", str(tmp_path / "resumed"), "--epochs", "2", "--max-steps", "3"]) == 0
    assert tg.load(tmp_path / "resumed" / "last.npz")["batch"] == 1
    assert main(["train", *common, "--out", str(tmp_path / "resumed"), "--epochs", "2", "--resume"]) == 0
    a, b = tg.load(tmp_path / "straight" / "last.npz"), tg.load(tmp_path / "resumed" / "last.npz")
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key], err_msg=key)
    for key in ("state", "param_groups"):
        assert str(a["optimizer"][key]) == str(b["optimizer"][key])


def test_resume_with_other_options_is_a_clear_error(voc, tmp_path, capsys):
    common = ["--data", str(voc), *TINY, "--eval-max-images", "4", "--out", str(tmp_path / "run")]
    assert main(["train", *common, "--epochs", "1", "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(["train", *common, "--epochs", "3", "--resume"]) == 2
    assert "resume with the options of the original run (--epochs 1" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["train", "--data", "/nonexistent/voc"], "no such folder"),
    (["eval", "--weights", "/nonexistent.npz"], "no such file"),
])
def test_missing_paths_are_one_line_errors(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_non_voc_folder_and_bad_files(tmp_path, voc, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "not a Pascal VOC folder" in capsys.readouterr().err

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    assert main(["eval", "--weights", str(bad), "--data", str(voc)]) == 2
    assert "bad.npz" in capsys.readouterr().err

    other = tmp_path / "other.npz"
    tg.save({"model": {"w": np.zeros(3)}, "config": {"backbone": "resnet18", "S": 2, "B": 2, "img_size": 64,
             "width": 0.125, "head": "conv"}, "classes": ["a", "b"]}, other)
    assert main(["eval", "--weights", str(other), "--data", str(voc)]) == 2
    assert "don't fit" in capsys.readouterr().err


def test_detect_rejects_unreadable_image(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), "--out", str(run), "--epochs", "1", "--max-steps", "1", *TINY,
                 "--eval-max-images", "4"]) == 0
    capsys.readouterr()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    assert main(["detect", "--weights", str(run / "last.npz"), str(broken), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "can't read" in err and "Traceback" not in err
    Image.new("L", (50, 40), 128).save(tmp_path / "gray.png")  # grayscale works
    assert main(["detect", "--weights", str(run / "last.npz"), str(tmp_path / "gray.png"),
                 "--out", str(tmp_path / "d")]) == 0
