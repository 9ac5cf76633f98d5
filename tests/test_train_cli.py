"""train / eval / detect end to end on a tiny synthetic set: the outputs and the report, run
folders that never lose work, exact resume whatever stopped the run, and one-line errors."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import tinygrad_yolo as tg
from tinygrad_yolo.cli import main
from tinygrad_yolo.data import generate_synthetic_voc

TINY = ["--img-size", "64", "--grid", "2", "--width", "0.125", "--batch-size", "4", "--workers",
        "1", "--no-progress"]


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return generate_synthetic_voc(tmp_path_factory.mktemp("voc") / "data", n_train=8, n_val=4,
                                  img_size=64, seed=1, max_objects=2)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_train_writes_every_output_the_report_and_loss_falls(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), "--out", str(run), "--epochs", "8", "--lr", "3e-3",
                 *TINY]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    for name in ("best.npz", "last.npz", "metrics.jsonl", "metrics.json", "results.csv",
                 "results.png", "pr_curve.png", "confusion_matrix.png", "val_0.jpg", "split.json",
                 "config.json"):
        assert (run / name).is_file(), name
    assert not (run / ".lock").exists()
    # the banner, a line per epoch, the per-class table, where it all went
    for needle in ("Pascal VOC root at", "train 8 images", "val 4 images", "classes   20:", "grid",
                   "schedule", "16 steps of batch 4", "epoch 8/8", "val mAP@0.5", "red_circle",
                   "saved to"):
        assert needle in out, needle
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == 8
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["map50"] <= 1.0 and summary["map50"] == round(metrics["map50"], 4)
    assert len(metrics["ap"]) == 20 and metrics["steps"] == 16 and summary["out"] == str(run)
    losses = [r["loss"] for r in _rows(run) if r["event"] == "step"]
    assert losses[-1] < 0.5 * losses[0], losses
    csv_lines = (run / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,step,loss") and len(csv_lines) == 9
    assert oct(os.stat(run / "last.npz").st_mode & 0o777) == oct(0o666 & ~_umask())

    # eval and detect on the checkpoints just written
    assert main(["eval", "--weights", str(run / "best.npz")]) == 0  # data, split: the checkpoint's
    out = capsys.readouterr().out
    assert "AP@0.5" in out and "red_circle" in out and "validation split" in out
    image = next((voc / "JPEGImages").glob("*.jpg"))
    assert main(["detect", "--weights", str(run / "last.npz"), str(image), "--out",
                 str(tmp_path / "det"), "--conf", "0.0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["image"] == str(image) and (tmp_path / "det" / image.name).is_file()
    assert (tmp_path / "det" / (image.name + ".json")).is_file()
    assert (tmp_path / "det" / "detections.json").is_file()
    assert all({"class", "class_id", "score", "box"} <= set(d) for d in result[0]["detections"])


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- run folders --------------------------------------------------------------------------------
def test_a_second_run_never_writes_into_the_first_runs_folder(voc, tmp_path, capsys):
    args = ["train", "--data", str(voc), *TINY, "--steps", "2", "--out", str(tmp_path / "yolo")]
    assert main(args) == 0 and main(args) == 0
    capsys.readouterr()
    first, second = tmp_path / "yolo", tmp_path / "yolo2"
    assert first.is_dir() and second.is_dir()
    assert [r["event"] for r in _rows(first)].count("start") == 1
    assert [r["event"] for r in _rows(second)].count("start") == 1
    assert main(args + ["--exist-ok"]) == 0  # asked for: into the same folder
    assert not (tmp_path / "yolo3").exists()


def test_two_runs_at_once_in_one_folder_are_refused(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a live run holds it
    os.write(fd, b"4242")
    try:
        assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 2
        _one_line_error(capsys, "in use by another training (pid 4242)")
    finally:
        os.close(fd)


def test_training_split_smaller_than_the_batch_finishes(voc, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(voc), "--img-size", "64", "--grid", "2", "--width", "0.125",
            "--workers", "1", "--no-progress", "--epochs", "2",
            "--out", str(run)]  # 8 images, the default batch of 32
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "batch     8 (the training split is smaller than --batch-size 32)" in out
    assert tg.load(run / "last.npz")["train"]["progress"]["step"] == 2


# ---- exact resume -------------------------------------------------------------------------------
def _train_state(path):
    ckpt = tg.load(path)
    return ckpt["train"], ckpt["model"]


def _assert_same_state(a, b):
    (ta, ma), (tb, mb) = a, b
    for key in ta["model"]:
        # weights and batch-norm buffers
        np.testing.assert_array_equal(ta["model"][key], tb["model"][key], err_msg=key)
    for key in ma:
        np.testing.assert_array_equal(ma[key], mb[key], err_msg="ema " + key)
    for name, sa in ta["optimizer"]["state"].items():
        for k, v in sa.items():
            np.testing.assert_array_equal(v, tb["optimizer"]["state"][name][k],
                                          err_msg=f"optimizer {name} {k}")
    assert ta["progress"] == tb["progress"] and ta["scheduler"] == tb["scheduler"]


def _kill_at(monkeypatch, where, at_call, signum=signal.SIGINT, times=1):
    """Send ``signum`` to this process during the ``at_call``-th call of ``where``."""
    import tinygrad_yolo.data.loader as loader
    import tinygrad_yolo.optim as optim
    from tinygrad_yolo.models.yolo import YOLOv1
    from tinygrad_yolo.tensor import Tensor
    owner, name, after = {"forward": (YOLOv1, "forward", False),
                          "backward": (Tensor, "backward", False),
                          "optimizer": (optim.AdamW, "step", True),
                          "loading": (loader.DataLoader, "_make_batch", False)}[where]
    original = getattr(owner, name)
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if not after and calls[0] == at_call:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        result = original(*args, **kwargs)
        if after and calls[0] == at_call:
            os.kill(os.getpid(), signum)
        return result
    monkeypatch.setattr(owner, name, wrapped)


@pytest.mark.parametrize("where, signum", [("forward", signal.SIGINT),
                                           ("backward", signal.SIGTERM),
                                           ("optimizer", signal.SIGINT),
                                           ("loading", signal.SIGTERM)])
def test_a_run_stopped_by_a_signal_anywhere_in_a_step_resumes_bit_for_bit(
        voc, tmp_path, capsys, monkeypatch, where, signum):
    common = ["--data", str(voc), *TINY, "--eval-max-images", "4", "--epochs", "3", "--seed", "3",
              "--ema"]
    assert main(["train", *common, "--out", str(tmp_path / "straight")]) == 0
    with monkeypatch.context() as m:
        _kill_at(m, where, at_call=3, signum=signum)
        code = main(["train", *common, "--out", str(tmp_path / "stopped")])
    assert code == (130 if signum == signal.SIGINT else 143)
    err = capsys.readouterr().err
    assert "saved" in err and "--resume --out" in err and str(tmp_path / "stopped") in err
    progress = tg.load(tmp_path / "stopped" / "last.npz")["train"]["progress"]
    assert 1 <= progress["step"] <= 4  # a whole number of steps: stopped at a step boundary
    # the options from the checkpoint
    assert main(["train", "--resume", "--out", str(tmp_path / "stopped"), "--no-progress"]) == 0
    _assert_same_state(_train_state(tmp_path / "straight" / "last.npz"),
                       _train_state(tmp_path / "stopped" / "last.npz"))
    rows = _rows(tmp_path / "stopped")
    events = [r["event"] for r in rows]
    assert events.count("stopped") == 1 and events.count("resume") == 1


def test_a_second_signal_quits_at_once_and_leaves_the_last_checkpoint_whole(voc, tmp_path, capsys,
                                                                            monkeypatch):
    run = tmp_path / "run"
    common = ["--data", str(voc), *TINY, "--eval-max-images", "4", "--epochs", "3", "--out",
              str(run)]
    with monkeypatch.context() as m:
        _kill_at(m, "forward", at_call=4, times=2)  # in epoch 2: epoch 1's checkpoint is on disk
        assert main(["train", *common]) == 130
    assert tg.load(run / "last.npz")["train"]["progress"]["step"] == 2
    assert not list(run.glob(".*.tmp"))
    capsys.readouterr()


def test_resume_restores_every_option_refuses_conflicts_and_can_extend(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--lr", "4e-3", "--steps", "4", "--out",
                 str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--lr", "1e-2", "--no-progress"]) == 2
    _one_line_error(capsys, "--lr 0.01 conflicts with the run's 0.004")
    assert main(["train", "--resume", "--out", str(run), "--steps", "6", "--no-progress",
                 "--workers", "0"]) == 0
    ckpt = tg.load(run / "last.npz")
    assert ckpt["train"]["progress"]["step"] == 6 and ckpt["train_config"]["lr"] == 4e-3
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--steps", "5", "--no-progress"]) == 2
    _one_line_error(capsys, "can only extend")


def test_the_first_command_retyped_with_resume_continues_a_killed_run(voc, tmp_path, capsys,
                                                                     monkeypatch):
    """Up-arrow and add --resume: the options given again are the run's, so they are accepted."""
    from tinygrad_yolo.training import run as run_module
    out = tmp_path / "run"
    command = ["train", "--data", str(voc), "--out", str(out), "--epochs", "6", "--seed", "2",
               *TINY]
    child = subprocess.Popen([sys.executable, "-m", "tinygrad_yolo.cli", *command],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / "last.npz").exists():  # its first checkpoint, at the end of epoch 1
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()[1]
        time.sleep(0.005)
    child.send_signal(signal.SIGTERM)
    err = child.communicate(timeout=300)[1]
    assert child.returncode == 143, err
    stopped_at = tg.load(out / "last.npz")["train"]["progress"]["step"]
    assert 2 <= stopped_at < 12
    checks, check_config = [], run_module.check_config
    monkeypatch.setattr(run_module, "check_config",
                        lambda cfg: checks.append(cfg) or check_config(cfg))
    assert main(command + ["--resume", "--batch-size", "2"]) == 2  # a conflict names both values
    _one_line_error(capsys, "--batch-size 2 conflicts with the run's 4")
    checks.clear()
    assert main(command + ["--resume"]) == 0
    assert len(checks) == 1  # the options of the run that goes on, checked once
    rows = _rows(out)
    assert [r["event"] for r in rows].count("resume") == 1
    assert tg.load(out / "last.npz")["train"]["progress"]["step"] == 12
    capsys.readouterr()


def test_resume_accepts_retyped_options_the_plan_resolved(voc, tmp_path, capsys):
    """A batch larger than the training split, and a window of the whole image, are stored
    resolved (8, and 0); typed again as they were first typed, they are the run's."""
    command = ["train", "--data", str(voc), "--out", str(tmp_path / "run"), "--img-size", "64",
               "--grid", "2", "--width", "0.125", "--workers", "1", "--no-progress", "--steps", "2",
               "--batch-size", "32", "--window", "64"]
    assert main(command) == 0
    saved = tg.load(tmp_path / "run" / "last.npz")["train_config"]
    assert (saved["batch_size"], saved["window"]) == (8, 0)
    assert main(command + ["--resume", "--steps", "3"]) == 0
    assert tg.load(tmp_path / "run" / "last.npz")["train"]["progress"]["step"] == 3
    capsys.readouterr()
    assert main(command + ["--resume", "--window", "32"]) == 2
    _one_line_error(capsys, "--window 32 conflicts with the run's 0")


def test_resume_without_a_checkpoint_names_the_folder(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    err = _one_line_error(capsys, "nothing")
    assert "--weights" not in err


def test_a_half_written_metrics_line_does_not_break_the_next_run(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "2", "--out", str(run)]) == 0
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"event": "step", "step": 3, "lo')  # killed mid-write
    (run / ".last.npz.abc123.tmp").write_bytes(b"half a checkpoint")  # and mid-save
    assert main(["train", "--resume", "--out", str(run), "--steps", "4", "--no-progress"]) == 0
    assert all(isinstance(r, dict) for r in _rows(run))
    assert not list(run.glob(".*.tmp"))
    capsys.readouterr()


# ---- fail fast, one line ------------------------------------------------------------------------
@pytest.mark.parametrize("args, needles", [
    (["--img-size", "50"], ["--img-size 50", "multiple of 32", "32 or 64"]),
    (["--img-size", "96", "--grid", "7"], ["--img-size 96", "--grid 7", "224"]),
    (["--width", "0"], ["--width"]),
    (["--width", "nan"], ["--width", "finite"]),
    (["--grid", "0"], ["--grid"]),
    (["--boxes", "0"], ["--boxes"]),
    (["--workers", "-1"], ["--workers"]),
    (["--max-steps", "-5"], ["--max-steps"]),
    (["--lr", "inf"], ["--lr"]),
    (["--val-fraction", "1"], ["--val-fraction"]),
    (["--steps", "5", "--epochs", "2"], ["--steps", "--epochs"]),
])
def test_bad_options_are_one_line_errors_before_any_data_is_read(tmp_path, capsys, args, needles):
    # --data points nowhere: the option must be refused before the data is even looked at
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"),
                 *args]) == 2
    _one_line_error(capsys, *needles)
    assert not (tmp_path / "r").exists()


def test_cuda_without_cupy_is_refused_before_the_data(tmp_path, capsys):
    if tg.cuda_available():
        pytest.skip("CuPy and a GPU are present: the error this checks can't happen here")
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--device", "cuda"]) == 2
    _one_line_error(capsys, "--device cuda", "CuPy")


@pytest.mark.parametrize("args, needle", [(["--conf", "nan"], "--conf"), (["--iou", "-1"], "--iou"),
                                          (["--iou", "0"], "--iou")])
def test_detect_thresholds(tmp_path, capsys, args, needle):
    assert main(["detect", "--weights", str(tmp_path / "w.npz"), str(tmp_path / "x.jpg"),
                 *args]) == 2
    _one_line_error(capsys, needle)


def test_broken_images_anywhere_are_named_before_the_first_step(voc, tmp_path, capsys):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(voc, data)
    val_id = (data / "ImageSets" / "Main" / "val.txt").read_text().split()[0]
    image = data / "JPEGImages" / f"{val_id}.jpg"
    image.write_bytes(image.read_bytes()[:len(image.read_bytes()) // 2])  # truncated, header intact
    assert main(["train", "--data", str(data), *TINY, "--steps", "2", "--out",
                 str(tmp_path / "r")]) == 2
    _one_line_error(capsys, f"{val_id}.jpg", "1 of 12 images")
    assert not (tmp_path / "r").exists()  # no run folder, nothing trained and lost
    # broken annotations and headers: every one of them named, not only the first
    (data / "Annotations" / "000001.xml").write_text("<annotation><size>")
    (data / "JPEGImages" / "000002.jpg").write_bytes(b"not an image")
    assert main(["train", "--data", str(data), *TINY, "--steps", "2", "--out",
                 str(tmp_path / "r")]) == 2
    _one_line_error(capsys, "2 files of the data are broken", "000001.xml", "000002.jpg")


@pytest.mark.parametrize("missing", ["classes", "S", "model"])
def test_checkpoints_missing_entries_are_one_line_errors(voc, tmp_path, capsys, missing):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    ckpt = tg.load(run / "best.npz")
    if missing == "S":
        del ckpt["config"]["S"]
    else:
        del ckpt[missing]
    tg.save(ckpt, tmp_path / "bad.npz")
    assert main(["eval", "--weights", str(tmp_path / "bad.npz")]) == 2
    _one_line_error(capsys, "bad.npz", repr(missing))


def test_hostile_checkpoints_are_refused_before_they_cost_memory(voc, tmp_path, capsys):
    import zipfile
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    good = tg.load(run / "best.npz")

    # a header declaring 4 TB in 16 bytes
    huge = tmp_path / "huge.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (1 << 40,)
    with zipfile.ZipFile(huge, "w") as zf, zf.open("x.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 16)
    # a deflate bomb: 64 MiB of zeros in a few KB
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.npy", "w") as f:
        np.lib.format.write_array(f, np.zeros(1 << 24, np.float32))
    # a structure nested a million levels deep
    deep = tmp_path / "deep.npz"
    np.savez(deep, __structure__=np.array('{"format": "tinygrad_yolo.checkpoint/1", "root": '
                                          + "[" * 10 ** 6 + "]" * 10 ** 6 + "}"))
    # a config asking for a huge model, with small weights
    big = dict(good, config=dict(good["config"], width=4.0, img_size=4096))
    tg.save(big, tmp_path / "big.npz")
    # complex weights
    cplx = dict(good, model={k: v.astype(np.complex64) if v.dtype.kind == "f" else v
                             for k, v in good["model"].items()})
    tg.save(cplx, tmp_path / "complex.npz")
    for path, needle in [(huge, "declares"), (bomb, "decompression bomb"), (deep, "nested"),
                         (tmp_path / "big.npz", "don't fit"),
                         (tmp_path / "complex.npz", "complex64")]:
        assert main(["eval", "--weights", str(path), "--data", str(voc)]) == 2
        _one_line_error(capsys, path.name, needle)


def test_nan_never_reaches_json(voc, tmp_path, capsys):
    from tinygrad_yolo.training.run_folder import dumps
    assert json.loads(dumps({"ap": [float("nan"), 1.0], "x": np.float32("inf")})) == {
        "ap": [None, 1.0], "x": None}
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    for name in ("metrics.json", "split.json", "config.json"):
        text = (run / name).read_text()
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text)


# ---- detect -------------------------------------------------------------------------------------
def test_detect_folders_globs_same_names_and_txt(voc, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(voc), *TINY, "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        Image.new("RGB", (80, 60), (200, 30, 30)).save(tmp_path / "in" / sub / "x.jpg")
    Image.new("L", (50, 40), 128).save(tmp_path / "in" / "gray.png")
    out = tmp_path / "out"
    assert main(["detect", "--weights", str(run / "best.npz"), str(tmp_path / "in" / "a" / "x.jpg"),
                 str(tmp_path / "in" / "b" / "x.jpg"), "--out", str(out), "--conf", "0"]) == 0
    assert (out / "a" / "x.jpg").is_file() and (out / "b" / "x.jpg").is_file()  # same stems apart
    capsys.readouterr()
    assert main(["detect", "--weights", str(run / "best.npz"), str(tmp_path / "in"), "--out",
                 str(out / "f"), "--save-txt", "--conf", "0"]) == 0
    assert (out / "f" / "in" / "gray.png").is_file()
    assert (out / "f" / "labels" / "in" / "a" / "x.txt").is_file()
    assert len(json.loads((out / "f" / "detections.json").read_text())) == 3
    assert main(["detect", "--weights", str(run / "best.npz"), str(tmp_path / "in" / "*" / "*.jpg"),
                 "--out", str(out / "g")]) == 0
    assert "saved to" in capsys.readouterr().out
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    assert main(["detect", "--weights", str(run / "best.npz"), str(broken), "--out",
                 str(out / "h")]) == 2
    _one_line_error(capsys, "broken.jpg")


def test_help_shows_every_flag_with_a_default_and_version(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--data", "--steps", "--img-size", "--grid", "--resume", "--exist-ok",
                 "--val-fraction"):
        assert flag in text
    assert text.count("default:") >= 20
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("tinygrad-yolo ")
