"""tg.save / tg.load: exact round trips without pickle, atomic writes, clear errors."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn, optim
from tinygrad_yolo.serialization import CheckpointError


def assert_same(a, b):
    """Equal values *and* equal types, recursively (1 vs 1.0 vs True count as different)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_same(u, v)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_nested_structure_round_trips_exactly(tmp_path):
    obj = {
        "model": {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
                  "bn.num_batches_tracked": np.array(5, dtype=np.int64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}},
                      "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "epoch": 7, "loss": 0.123456789012345678, "name": "résumé ✓", "done": False, "note": None,
        "history": [1.5, 2, "x", [True, None], (), {}],
        "special": [float("nan"), float("inf"), -0.0, 10 ** 30],
        "dtypes": [np.zeros(3, dtype=dt)
                   for dt in (np.float16, np.float64, np.int8, np.uint8, np.bool_, np.complex64)],
        "numpy_scalars": [np.float32(0.1), np.int64(-3), np.bool_(True)],
        "empty": np.zeros((0, 4)), "strings": np.array(["a", "bc"]),
    }
    tg.save(obj, tmp_path / "ck.npz")
    assert_same(tg.load(tmp_path / "ck.npz"), obj)


def test_tensors_are_saved_as_arrays(tmp_path):
    t = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    lin = nn.Linear(2, 2)
    tg.save({"t": t, "p": lin.weight}, tmp_path / "t.npz")
    out = tg.load(tmp_path / "t.npz")
    assert isinstance(out["t"], np.ndarray) and isinstance(out["p"], np.ndarray)
    np.testing.assert_array_equal(out["p"], lin.weight.numpy())


def test_file_is_a_plain_npz_with_readable_names_and_no_pickle(tmp_path):
    path = tg.save({"model": {"fc.weight": np.ones(2)}, "epoch": 1}, str(tmp_path / "ck.npz"))
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"model/fc.weight", "__structure__"}
        assert '"epoch"' in str(npz["__structure__"])
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            assert z.read(name)[:6] == b"\x93NUMPY"  # every member is a .npy array


def test_plain_savez_archive_loads_as_flat_dict(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.ones(2), b=np.zeros(3))
    out = tg.load(tmp_path / "w.npz")
    assert set(out) == {"a", "b"} and out["b"].shape == (3,)


def test_model_checkpoint_round_trip(tmp_path):
    tg.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(tg.randn(8, 3))  # move the BN running statistics away from their initial values
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    tg.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3},
            tmp_path / "m.npz")
    ck = tg.load(tmp_path / "m.npz")
    tg.seed(1)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh.load_state_dict(ck["model"])
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert ck["epoch"] == 3


def test_unsupported_values_are_rejected_by_name(tmp_path):
    with pytest.raises(TypeError, match="object.*pickle"):
        tg.save({"bad": np.array([{}, 1], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="can't store a set \\(at a/0\\)"):
        tg.save({"a": [{1, 2}]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be str or int"):
        tg.save({(1, 2): 3}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []  # nothing (not even a temporary file) left behind


def test_overwrite_replaces_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "ck.npz"
    tg.save({"v": 1}, path)
    tg.save({"v": 2}, path)
    assert tg.load(path) == {"v": 2}
    assert os.listdir(tmp_path) == ["ck.npz"]


KILL_MID_SAVE = textwrap.dedent("""
    import io, os, sys, time
    import numpy as np
    import tinygrad_yolo as tg
    from tinygrad_yolo import serialization

    def half_then_hang(f, arrays):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        open(sys.argv[2], "w").close()  # tell the parent we are half-way
        time.sleep(120)
        f.write(data[len(data) // 2:])

    serialization._write_npz = half_then_hang
    tg.save({"epoch": 2, "w": np.full(50_000, 2.0)}, sys.argv[1])
""")


def test_killed_save_leaves_previous_checkpoint_intact(tmp_path):
    path, marker = tmp_path / "ck.npz", tmp_path / "halfway"
    tg.save({"epoch": 1, "w": np.ones(50_000)}, path)
    proc = subprocess.Popen([sys.executable, "-c", KILL_MID_SAVE, str(path), str(marker)])
    try:
        deadline = time.time() + 60
        while not marker.exists():
            assert proc.poll() is None, "the saving subprocess exited early"
            assert time.time() < deadline, (
                "the saving subprocess never reached the middle of the write")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    ck = tg.load(path)
    assert ck["epoch"] == 1 and (ck["w"] == 1).all()
    # The half-written data sits in a temporary file, never at `path`; it is unreadable.
    leftovers = [p for p in tmp_path.iterdir() if p.name not in ("ck.npz", "halfway")]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".ck.npz.")
    with pytest.raises(CheckpointError):
        tg.load(leftovers[0])


def corrupt_cases(tmp_path):
    good = tmp_path / "good.npz"
    tg.save({"w": np.arange(1000.0), "epoch": 1}, good)
    data = good.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "empty.npz": b"",
        "text.npz": b"this is not a checkpoint\n" * 10,
        "pickle.npz": b"\x80\x04\x95" + b"\x00" * 40,
    }
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the array payload: the zip CRC catches it
    cases["flipped.npz"] = bytes(flipped)
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    return list(cases)


def test_corrupt_files_raise_checkpoint_error_naming_the_file(tmp_path):
    for name in corrupt_cases(tmp_path):
        with pytest.raises(CheckpointError, match=name) as err:
            tg.load(tmp_path / name)
        assert isinstance(err.value, ValueError)


def test_npy_and_missing_and_damaged_structure(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(CheckpointError, match="a.npy.*single .npy array"):
        tg.load(tmp_path / "a.npy")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        tg.load(tmp_path / "nope.npz")
    np.savez(tmp_path / "s.npz", __structure__=np.array("{not json"))
    with pytest.raises(CheckpointError, match="s.npz.*structure"):
        tg.load(tmp_path / "s.npz")
