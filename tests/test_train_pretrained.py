"""`train --pretrained PATH`: the backbone starts from the file, the head as without it, checked
before any data is read; a resumed run keeps its own weights. And the way back: a backbone
trained here saved in torchvision's layout (`export --format torchvision`, `save_backbone`)
loads through the same reader."""
import json
import re

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.cli import main
from tinygrad_yolo.models.pretrained import load_pretrained, read_weights, save_backbone

pytest.importorskip("safetensors")

from test_train_cli import TINY, voc  # noqa: E402,F401 -- the same tiny set and options


def random_detector(seed, width=0.125, **config):
    tg.utils.seed(seed)
    return tg.models.YOLOv1(S=2, B=2, C=20, img_size=64, width=width, **config)


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory):
    """A detector's checkpoint (another seed than the runs below) and its backbone written by
    `export --format torchvision`."""
    folder = tmp_path_factory.mktemp("pretrained")
    model = random_detector(seed=7)
    tg.save({"model": model.state_dict(), "config": model.config,
             "classes": [f"c{k}" for k in range(20)]}, folder / "best.npz")
    assert main(["export", "--weights", str(folder / "best.npz"), "--format", "torchvision"]) == 0
    return folder / "backbone.safetensors", model.backbone.state_dict()


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_a_saved_backbone_round_trips_through_the_loader(tmp_path, backbone):
    model = random_detector(seed=3, backbone=backbone, width=0.25, stride=16)
    path = save_backbone(model, tmp_path / "b.safetensors")
    saved = read_weights(path)
    assert not any(k.startswith("fc.") for k in saved) and "layer4.1.conv2.weight" in saved
    again = getattr(tg.models, backbone)(width=0.25, weights=path)  # torchvision's API
    fresh = random_detector(seed=4, backbone=backbone, width=0.25)
    head_before = fresh.head.state_dict()
    assert "layer1" in load_pretrained(fresh, path)
    for k, v in model.backbone.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[k], v)
        np.testing.assert_array_equal(fresh.backbone.state_dict()[k], v)
    for k, v in fresh.head.state_dict().items():
        np.testing.assert_array_equal(v, head_before[k])


def trained_state(run):
    return tg.load(run / "last.npz")["train"]["model"]


def test_train_starts_the_backbone_from_the_file_and_the_head_as_without_it(voc, tmp_path,
                                                                             backbone_file, capsys):
    path, weights = backbone_file
    # an lr of 1e-9: one step moves a weight by about 1e-9, so the start shows through
    common = ["train", "--data", str(voc), *TINY, "--steps", "1", "--lr", "1e-9"]
    assert main([*common, "--out", str(tmp_path / "with"), "--pretrained", str(path)]) == 0
    out = capsys.readouterr().out
    banner = next(line for line in out.splitlines() if line.startswith("pretrained"))
    assert banner.split()[1:6] == ["bn1,", "conv1,", "layer1,", "layer2,", "layer3,"]
    assert str(path) in banner and "fc ignored; the head initialised as without it" in out
    assert main([*common, "--out", str(tmp_path / "without")]) == 0
    with_, without = trained_state(tmp_path / "with"), trained_state(tmp_path / "without")
    convs = [k for k in weights if k.endswith(".weight") and weights[k].ndim == 4]
    for k in convs:
        np.testing.assert_allclose(with_["backbone." + k], weights[k], atol=1e-6)
        assert np.abs(without["backbone." + k] - weights[k]).max() > 1e-3
    # the head's parameters (its batch-norm statistics follow the features, which differ)
    head = [k for k in with_ if k.startswith(("head.", "extra.")) and "running_" not in k
            and with_[k].dtype.kind == "f"]
    assert head
    for k in head:
        np.testing.assert_allclose(with_[k], without[k], atol=1e-6)
    config = json.loads((tmp_path / "with" / "config.json").read_text())
    assert config["pretrained"] == str(path.resolve())


def test_a_resumed_run_keeps_its_weights_without_the_file(voc, tmp_path, backbone_file, capsys):
    path, _ = backbone_file
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(path.read_bytes())
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "2", "--out", str(run),
                 "--pretrained", str(copy)]) == 0
    saved = tg.load(run / "last.npz")
    assert saved["train_config"]["pretrained"] == str(copy.resolve())
    copy.unlink()  # a resumed run does not read it again
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--steps", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "(loaded when the run started; the weights now come from last.npz)" in out
    assert tg.load(run / "last.npz")["train"]["progress"]["step"] == 4
    assert main(["train", "--resume", "--out", str(run), "--pretrained", str(path),
                 "--steps", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--pretrained {path} conflicts with the run's {copy.resolve()}" in err


def test_a_file_that_does_not_fit_is_one_line_before_any_data_is_read(tmp_path, backbone_file,
                                                                      capsys):
    path, _ = backbone_file
    run = tmp_path / "run"
    # width 0.25 against the file's 0.125; and a data path that does not exist: never reached
    assert main(["train", "--data", str(tmp_path / "nowhere"), *TINY, "--width", "0.25",
                 "--out", str(run), "--pretrained", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"tinygrad-yolo train: error: --pretrained {path}")
    assert re.search(r": [\w.]+ is \(8,[\d, ]*\) in the file but \(16,[\d, ]*\) here", err), err
    assert not run.exists()
    assert main(["train", *TINY, "--out", str(run), "--pretrained",
                 str(tmp_path / "missing.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("missing.pth: no such file") and "--pretrained" in err
    assert not run.exists()
