"""`detect --weights model.onnx` runs the exported file through ONNX Runtime and gives what
`detect --weights best.npz` gives: the same files, the same objects (boxes within 1e-4 of the
image side, the same classes), for the raw grid and the post-processed export."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

COMPARE = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_onnx_detect.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny detector trained on the synthetic set until it finds objects (its validation
    images are its training images), and the images to detect on."""
    root = tmp_path_factory.mktemp("onnx_detect")
    voc = generate_synthetic_voc(root / "data", n_train=8, n_val=4, img_size=64, seed=1,
                                 max_objects=2)
    sets = voc / "ImageSets" / "Main"
    (sets / "val.txt").write_text((sets / "train.txt").read_text())
    assert main(["train", "--data", str(voc), "--out", str(root / "run"), "--epochs", "30",
                 "--lr", "1e-2", "--img-size", "64", "--grid", "2", "--width", "0.125",
                 "--batch-size", "4", "--workers", "1", "--eval-every", "10",
                 "--no-progress"]) == 0
    return root / "run", voc / "JPEGImages"


def labels(folder):
    """{image: (classes, boxes cx cy w h, scores)} from detect's labels/*.txt."""
    out = {}
    for txt in sorted((folder / "labels").rglob("*.txt")):
        rows = np.array(txt.read_text().split(), dtype=np.float64).reshape(-1, 6)
        out[str(txt.relative_to(folder))] = (rows[:, 0], rows[:, 1:5], rows[:, 5])
    return out


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("postprocess", [False, True])
def test_detect_with_the_exported_file_equals_detect_with_the_checkpoint(trained, tmp_path,
                                                                           capsys, postprocess):
    run, images = trained
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", "--weights", str(run / "best.npz"), "--out", str(onnx_file)]
                + (["--with-postprocess"] if postprocess else [])) == 0
    outs = {}
    for name, weights in (("npz", run / "best.npz"), ("onnx", onnx_file)):
        outs[name] = tmp_path / name
        assert main(["detect", "--weights", str(weights), str(images), "--out", str(outs[name]),
                     "--conf", "0.01", "--save-txt"]) == 0
    printed = capsys.readouterr().out
    assert f"saved to {outs['onnx']}" in printed
    assert files(outs["npz"]) == files(outs["onnx"])  # same pictures, .json files, labels
    ours, theirs = labels(outs["npz"]), labels(outs["onnx"])
    assert sorted(ours) == sorted(theirs) and len(ours) == 12
    found = 0
    for image in ours:
        (c1, b1, s1), (c2, b2, s2) = ours[image], theirs[image]
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_allclose(b1, b2, rtol=0, atol=1e-4)
        np.testing.assert_allclose(s1, s2, rtol=0, atol=2e-4)  # written with 4 decimals
        found += len(c1)
    assert found >= 12  # a real comparison: the model finds objects
    records = [json.loads((outs[n] / "detections.json").read_text()) for n in ("npz", "onnx")]
    assert [[d["class"] for d in r["detections"]] for r in records[0]] == \
        [[d["class"] for d in r["detections"]] for r in records[1]]
    # the benchmark script that compares two detect folders says the same
    done = subprocess.run([sys.executable, str(COMPARE), str(outs["npz"]), str(outs["onnx"])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["same"] and report["detections"] == found and report["images"] == 12


def test_the_compare_script_sees_a_difference(trained, tmp_path):
    run, images = trained
    for name, conf in (("a", "0.01"), ("b", "0.1")):
        assert main(["detect", "--weights", str(run / "best.npz"), str(images), "--out",
                     str(tmp_path / name), "--conf", conf]) == 0
    done = subprocess.run([sys.executable, str(COMPARE), str(tmp_path / "a"), str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and not json.loads(done.stdout)["same"]


def test_without_onnxruntime_or_on_cuda_detect_says_so_in_one_line(trained, tmp_path, capsys,
                                                                   monkeypatch):
    run, images = trained
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", "--weights", str(run / "best.npz"), "--out", str(onnx_file)]) == 0
    capsys.readouterr()
    assert main(["detect", "--weights", str(onnx_file), str(images), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinygrad-yolo detect: error: --device cuda:") and "\n" not in err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["detect", "--weights", str(onnx_file), str(images), "--out",
                 str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.strip() == (
        'tinygrad-yolo detect: error: onnxruntime is not installed; '
        'pip install "tinygrad_yolo[export]" adds it')
