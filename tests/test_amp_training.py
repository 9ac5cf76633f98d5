"""--amp and --tf32 in the commands: train runs its forward under autocast (and a GradScaler for
fp16, its state in the checkpoint), records --amp in the checkpoint so that --resume can't change
the arithmetic silently, says on the CPU that bf16 is for checking, not speed; eval and detect
take --amp; --tf32 without a GPU is one line."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.cli import main

from test_train_cli import TINY, voc  # noqa: E402,F401 -- the same tiny set and options


def _one_line_error(capsys, text):
    err = capsys.readouterr().err.strip()
    assert text in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_train_amp_bf16_is_recorded_and_resume_refuses_another_amp(voc, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(voc), *TINY, "--steps", "2", "--out", str(run)]
    assert main(args + ["--amp", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "--amp bf16 on the CPU" in out and "to check the arithmetic" in out
    ckpt = tg.load(run / "last.npz")
    assert ckpt["train_config"]["amp"] == "bf16" and "scaler" not in ckpt["train"]
    assert all(np.asarray(v).dtype == np.float32 for v in ckpt["model"].values()
               if np.asarray(v).dtype.kind == "f")
    assert main(["train", "--resume", "--out", str(run), "--amp", "off", "--steps", "3"]) == 2
    _one_line_error(capsys, "--amp off conflicts with the run's bf16")
    assert main(["train", "--resume", "--out", str(run), "--steps", "3", "--no-progress"]) == 0
    assert tg.load(run / "last.npz")["train_config"]["amp"] == "bf16"  # kept, not dropped
    capsys.readouterr()
    for command in (["eval", "--weights", str(run / "last.npz"), "--amp", "bf16", "--json"],
                    ["detect", "--weights", str(run / "last.npz"), "--amp", "bf16", "--json",
                     "--out", str(tmp_path / "det"), str(voc)]):
        assert main(command) == 0, command


# the first float16 steps overflow (inf · 0 in a GEMM warns) until the scale backs off: that is
# what the scaler is for
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_train_amp_fp16_keeps_its_grad_scaler_in_the_checkpoint(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "2", "--out", str(run),
                 "--amp", "fp16"]) == 0
    scaler = tg.load(run / "last.npz")["train"]["scaler"]
    assert float(scaler["scale"]) > 0 and int(scaler["growth_interval"]) == 2000
    capsys.readouterr()


def test_tf32_without_a_gpu_is_one_line(voc, tmp_path, capsys):
    assert main(["train", "--data", str(voc), *TINY, "--steps", "1", "--tf32",
                 "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "--tf32: TF32 is a mode of NVIDIA GPUs' tensor cores; it needs "
                            "--device cuda")
    assert not (tmp_path / "run").exists()
