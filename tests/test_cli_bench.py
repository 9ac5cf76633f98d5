"""`tinygrad-yolo bench` prints a row per configuration; the loader benchmark measures a rate."""
import json

from tinygrad_yolo.bench import loader_rate, random_targets
from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc


def test_bench_step_json(capsys):
    assert main(["bench", "--configs", "tiny_b32", "--steps", "1", "--no-loader", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["config"] == "tiny_b32" and row["batch"] == 32
    assert row["s_per_step"] > 0 and abs(row["images_per_s"] - 32 / row["s_per_step"]) < 0.1


def test_bench_rejects_unknown_config(capsys):
    assert main(["bench", "--configs", "r99"]) == 2
    assert "unknown config(s) r99" in capsys.readouterr().err


def test_random_targets_are_valid():
    import numpy as np
    t = random_targets(np.random.default_rng(0), 4)
    assert t.shape == (4, 7, 7, 25)
    has = t[..., 4] == 1
    assert has.sum(axis=(1, 2)).min() >= 1 and (t[..., 5:].sum(-1) == has).all()


def test_loader_rate(tmp_path):
    root = generate_synthetic_voc(tmp_path / "voc", n_train=8, n_val=0, img_size=64, seed=0)
    assert loader_rate(root, 64, batch=4, workers=1, batches=3) > 0
