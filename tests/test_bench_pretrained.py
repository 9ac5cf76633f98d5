"""benchmarks/bench_pretrained.py on tiny settings: a source run, its backbone exported in
torchvision's layout, and two target runs (from scratch, --pretrained) reported per evaluation."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_yolo.data import generate_synthetic_voc

pytest.importorskip("safetensors")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pretrained.py"
TINY = "--img-size 64 --grid 2 --batch-size 4 --workers 1 --no-progress --eval-every 1"


def test_the_benchmark_reports_both_runs_per_evaluation(tmp_path):
    source = generate_synthetic_voc(tmp_path / "source", n_train=8, n_val=4, img_size=64,
                                    seed=1, max_objects=2)
    target = generate_synthetic_voc(tmp_path / "target", n_train=8, n_val=4, img_size=64,
                                    seed=2, max_objects=2)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(target), "--source-data", str(source),
         "--source-steps", "4", "--steps", "4", "--width", "0.125", "--target-map", "0.0",
         "--args", TINY, "--source-args", TINY, "--out", str(tmp_path / "bench")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [r.get("run") for r in lines[:3]] == ["source", "scratch", "pretrained"]
    for record in lines[1:3]:
        assert [e["step"] for e in record["evaluations"]] == [2, 4]  # 2 steps an epoch
        assert 0 <= record["final_map50"] <= 1 and record["final_map50_95"] is not None
    config = json.loads((tmp_path / "bench" / "pretrained" / "config.json").read_text())
    assert config["pretrained"] == str((tmp_path / "bench" / "backbone.safetensors").resolve())
    assert json.loads((tmp_path / "bench" / "scratch" / "config.json").read_text())[
        "pretrained"] is None
    summary = lines[3]
    assert summary["target_map50"] == 0.0 and summary["pretrained_reaches_at"]["step"] == 2
    assert summary["speedup"] > 0
