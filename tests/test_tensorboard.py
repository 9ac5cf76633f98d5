"""`train --tensorboard`: the rows of metrics.jsonl also written as TensorBoard scalars by
tensorboardX (read back here from the event files' records); without tensorboardX one line
naming the extra, before any data is read."""
import json
import struct
import sys

import pytest

from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc

TINY = ["--img-size", "64", "--grid", "2", "--width", "0.125", "--batch-size", "4", "--workers",
        "1", "--no-progress"]


def scalars(folder):
    """{(tag, step): value} from the TFRecord event files in ``folder``: records of a length
    (8 bytes), its CRC (4), an Event protobuf and its CRC (4)."""
    event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
    found = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            n = struct.unpack("<Q", data[i:i + 8])[0]
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                found[(value.tag, event.step)] = value.simple_value
    return found


def test_the_event_files_hold_what_metrics_jsonl_holds(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    voc = generate_synthetic_voc(tmp_path / "data", n_train=8, n_val=4, img_size=64, seed=1,
                                 max_objects=2)
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--epochs", "2", "--log-every", "1",
                 "--out", str(run), "--tensorboard"]) == 0
    found = scalars(run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r["event"] == "step"]
    evals = [r for r in rows if r["event"] == "epoch" and r["map50"] is not None]
    assert len(steps) == 4 and len(evals) == 2
    for r in steps:
        for key in ("loss", "coord", "size", "obj", "noobj", "class", "lr"):
            assert found[(f"train/{key}", r["step"])] == pytest.approx(r[key], rel=1e-6)
    for r in evals:
        for key, tag in (("map50", "mAP50"), ("map50_coco", "mAP50_coco"),
                         ("map50_95", "mAP50-95")):
            assert found[(f"val/{tag}", r["step"])] == pytest.approx(r[key], abs=1e-7)
    assert len(found) == 4 * 7 + 2 * 3
    # resumed, the run keeps its options: its third epoch goes to the same folder's events
    assert main(["train", "--resume", "--out", str(run), "--epochs", "3", "--no-progress"]) == 0
    assert len(scalars(run)) == len(found) + 2 * 7 + 3


def test_without_tensorboardx_it_is_one_line_before_the_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "nowhere"), *TINY, "--out", str(run),
                 "--tensorboard"]) == 2
    assert capsys.readouterr().err.strip() == (
        'tinygrad-yolo train: error: --tensorboard needs tensorboardX; pip install '
        '"tinygrad_yolo[tensorboard]" adds it')
    assert not run.exists()
