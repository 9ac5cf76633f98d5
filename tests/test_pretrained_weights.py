"""Weights from the PyTorch ecosystem without PyTorch: torch.save zips written here by hand from
the documented format, .safetensors through the safetensors package, hostile files refused in
one line before any tensor data is read."""
import struct
import zipfile

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import torch_zip
from tinygrad_yolo.models.pretrained import load_pretrained, read_weights
from tinygrad_yolo.serialization import CheckpointError

STORAGE = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
           np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
           np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage"}


# ---- a torch.save writer, opcode by opcode (pickle protocol 2, as torch.save writes) ----------
def op_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(s):
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(v):
    if -2 ** 31 <= v < 2 ** 31:
        return b"J" + struct.pack("<i", v)
    data = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def op_tuple(values):
    return b"(" + b"".join(op_int(v) for v in values) + b"t"


def tensor_record(kind, key, numel, offset, size, stride):
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    storage = (b"(" + op_str("storage") + op_global("torch", kind) + op_str(key) + op_str("cpu")
               + op_int(numel) + b"tQ")  # BINPERSID
    return (op_global("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + op_int(offset)
            + op_tuple(size) + op_tuple(stride) + b"\x89"
            + op_global("collections", "OrderedDict") + b")R" + b"tR")


def state_dict_pickle(records):
    """OrderedDict of (name, record bytes), one SETITEM each, then the ``_metadata`` attribute
    a module's state_dict carries (BUILD with {"_metadata": OrderedDict({"": {"version": 1}})})."""
    body = b"".join(op_str(name) + record + b"s" for name, record in records)
    metadata = (b"}" + op_str("_metadata") + op_global("collections", "OrderedDict") + b")R"
                + op_str("") + b"}" + op_str("version") + op_int(1) + b"s" + b"s" + b"s" + b"b")
    return b"\x80\x02" + op_global("collections", "OrderedDict") + b")R" + body + metadata + b"."


def write_torch_zip(path, pickle_bytes, storages, byteorder="little", root="archive"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{root}/data.pkl", pickle_bytes)
        z.writestr(f"{root}/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"{root}/data/{key}", raw)
        z.writestr(f"{root}/version", "3\n")
    return path


def save_like_torch(path, state, byteorder="little"):
    """Each array its own contiguous storage, as torch.save writes a state dict."""
    records, storages = [], {}
    for k, (name, a) in enumerate(state.items()):
        a = np.array(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        stride = [s // a.itemsize for s in a.strides]
        records.append((name, tensor_record(STORAGE[a.dtype], str(k), a.size, 0, a.shape, stride)))
        order = ">" if byteorder == "big" else "<"
        storages[str(k)] = a.astype(a.dtype.newbyteorder(order)).tobytes()
    return write_torch_zip(path, state_dict_pickle(records), storages, byteorder)


def random_state(model, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(v.shape).astype(v.dtype) if v.dtype.kind == "f"
                else np.full(v.shape, 7, v.dtype)) for k, v in model.state_dict().items()}


@pytest.fixture
def no_tensor_data_read(monkeypatch):
    """Fails the test if any storage's bytes are turned into an array."""
    def refuse(*args):
        raise AssertionError("tensor data was read before the file was refused")
    monkeypatch.setattr(torch_zip, "_storage_array", refuse)


# ---- what a real checkpoint gives ------------------------------------------------------------
def test_torchvision_layout_loads_into_resnet18_with_fc_ignored(tmp_path):
    source = random_state(tg.models.resnet18(width=0.25))
    source["fc.weight"] = np.zeros((1000, 128), np.float32)  # torchvision's classifier
    source["fc.bias"] = np.zeros(1000, np.float32)
    path = save_like_torch(tmp_path / "resnet18-f37072fd.pth", source)
    model = tg.models.resnet18(width=0.25, num_classes=10, weights=path)
    loaded = model.state_dict()
    for name, value in source.items():
        if not name.startswith("fc."):
            np.testing.assert_array_equal(loaded[name], value)
    assert loaded["fc.weight"].shape == (10, 128)


def test_views_shared_storages_half_precision_and_big_endian(tmp_path):
    base = np.arange(24, dtype=np.float16)
    records = [("a", tensor_record("HalfStorage", "0", 24, 2, (3, 4), (1, 6))),  # a strided view
               ("b", tensor_record("HalfStorage", "0", 24, 0, (2,), (1,))),
               ("n", tensor_record("LongStorage", "1", 1, 0, (), ()))]
    for order in ("little", "big"):
        raw = {"0": base.astype(">f2" if order == "big" else "<f2").tobytes(),
               "1": np.array([5], ">i8" if order == "big" else "<i8").tobytes()}
        path = write_torch_zip(tmp_path / f"{order}.pth", state_dict_pickle(records), raw, order)
        out = read_weights(path)
        np.testing.assert_array_equal(out["a"], np.lib.stride_tricks.as_strided(
            base[2:], (3, 4), (2, 12)))
        np.testing.assert_array_equal(out["b"], base[:2])
        assert out["n"].shape == () and out["n"] == 5 and out["a"].dtype == np.float16


def test_bfloat16_storages_become_float32(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = write_torch_zip(tmp_path / "bf16.pth", state_dict_pickle(
        [("w", tensor_record("BFloat16Storage", "0", 3, 0, (3,), (1,)))]), {"0": bits})
    np.testing.assert_array_equal(read_weights(path)["w"], values)


def test_safetensors_into_a_detector_backbone_leaves_the_head_alone(tmp_path):
    from safetensors.numpy import save_file
    tg.manual_seed(0)
    fresh = tg.models.YOLOv1(S=2, C=3, img_size=64, width=0.25)
    source = random_state(fresh.backbone, seed=1)
    del source["bn1.num_batches_tracked"]  # older torchvision files lack these
    save_file(source, str(tmp_path / "backbone.safetensors"))
    tg.manual_seed(0)
    model = tg.models.YOLOv1(S=2, C=3, img_size=64, width=0.25)
    layers = load_pretrained(model, tmp_path / "backbone.safetensors")
    assert layers == ["bn1", "conv1", "layer1", "layer2", "layer3", "layer4"]
    np.testing.assert_array_equal(model.backbone.conv1.weight.numpy(), source["conv1.weight"])
    for name, value in fresh.head.state_dict().items():
        np.testing.assert_array_equal(model.head.state_dict()[name], value)


# ---- hostile and mismatched files: one line, before any tensor data is read ---------------------
def test_a_pickle_that_calls_os_system_is_refused(tmp_path, no_tensor_data_read):
    marker = tmp_path / "ran"
    evil = (b"\x80\x02" + op_global("os", "system") + op_str(f"touch {marker}") + b"\x85R.")
    path = write_torch_zip(tmp_path / "evil.pth", evil, {})
    with pytest.raises(CheckpointError, match=r"evil\.pth: refuses to call os\.system: a "
                                              r"weights-only checkpoint") as e:
        read_weights(path)
    assert "\n" not in str(e.value) and not marker.exists()


def test_a_storage_larger_than_the_file_is_refused(tmp_path, no_tensor_data_read):
    numel = 1 << 40  # four terabytes of float32 declared, 16 bytes stored
    path = write_torch_zip(tmp_path / "big.pth", state_dict_pickle(
        [("w", tensor_record("FloatStorage", "0", numel, 0, (numel,), (1,)))]), {"0": bytes(16)})
    with pytest.raises(CheckpointError, match=r"big\.pth: w's storage declares 4398046511104 "
                                              r"bytes but its entry holds 16"):
        read_weights(path)


def test_a_view_past_its_storage_is_refused(tmp_path, no_tensor_data_read):
    path = write_torch_zip(tmp_path / "view.pth", state_dict_pickle(
        [("w", tensor_record("FloatStorage", "0", 4, 2, (2, 2), (2, 1)))]), {"0": bytes(16)})
    with pytest.raises(CheckpointError, match=r"w reaches element 5 of a storage of 4"):
        read_weights(path)


def test_name_collisions_are_refused(tmp_path, no_tensor_data_read):
    record = tensor_record("FloatStorage", "0", 1, 0, (1,), (1,))
    twice = write_torch_zip(tmp_path / "twice.pth", state_dict_pickle(
        [("conv1.weight", record), ("conv1.weight", record)]), {"0": bytes(4)})
    with pytest.raises(CheckpointError, match=r"twice\.pth: the name 'conv1\.weight' appears "
                                              r"twice"):
        read_weights(twice)
    with pytest.warns(UserWarning, match="Duplicate name"):
        entries = write_torch_zip(tmp_path / "entries.pth", state_dict_pickle(
            [("w", record)]), {"0": bytes(4)})
        with zipfile.ZipFile(entries, "a") as z:
            z.writestr("archive/data/0", bytes(4))
    with pytest.raises(CheckpointError, match=r"the archive holds 'archive/data/0' twice"):
        read_weights(entries)


def test_a_data_parallel_prefix_colliding_with_a_plain_name_is_refused(tmp_path):
    model = tg.models.resnet18(width=0.25)
    state = random_state(model)
    state["module.conv1.weight"] = state["conv1.weight"]
    path = save_like_torch(tmp_path / "dp.pth", state)
    with pytest.raises(CheckpointError, match=r"'module\.conv1\.weight' and another entry both "
                                              r"name 'conv1\.weight'"):
        load_pretrained(model, path)


def test_a_safetensors_header_with_a_repeated_name_or_data_past_the_end(tmp_path):
    def write(name, header, data):
        raw = header.encode()
        (tmp_path / name).write_bytes(struct.pack("<Q", len(raw)) + raw + data)
        return tmp_path / name
    entry = '{"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
    with pytest.raises(CheckpointError, match=r"the name 'w' appears twice"):
        read_weights(write("twice.safetensors", f'{{"w": {entry}, "w": {entry}}}', bytes(8)))
    with pytest.raises(CheckpointError, match=r"w ends at byte 8, past the file's 4 bytes"):
        read_weights(write("short.safetensors", f'{{"w": {entry}}}', bytes(4)))


def test_shapes_and_names_are_checked_before_anything_is_copied(tmp_path):
    wide = save_like_torch(tmp_path / "wide.pth", random_state(tg.models.resnet18(width=0.5)))
    model = tg.models.resnet18(width=0.25)
    before = model.state_dict()
    with pytest.raises(CheckpointError, match=r"wide\.pth: conv1\.weight is \(32, 3, 7, 7\) in the "
                                              r"file but \(16, 3, 7, 7\) here"):
        load_pretrained(model, wide)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    deep = save_like_torch(tmp_path / "r50.pth", random_state(tg.models.resnet50(width=0.25)))
    with pytest.raises(CheckpointError, match=r"r50\.pth: layer1\.0\.conv3\.weight has no place"):
        load_pretrained(model, deep)
    state = random_state(model)
    del state["layer4.1.conv2.weight"]
    with pytest.raises(CheckpointError, match=r"the file has no layer4\.1\.conv2\.weight"):
        load_pretrained(model, save_like_torch(tmp_path / "part.pth", state))


def test_legacy_and_broken_files_are_one_line(tmp_path):
    (tmp_path / "legacy.pth").write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")
    with pytest.raises(CheckpointError, match=r"legacy\.pth: not a zip archive; only the zip "
                                              r"format torch\.save writes"):
        read_weights(tmp_path / "legacy.pth")
    path = write_torch_zip(tmp_path / "junk.pth", b"\x80\x02garbage", {})
    with pytest.raises(CheckpointError, match=r"junk\.pth: data\.pkl is not a readable pickle"):
        read_weights(path)
    plain = write_torch_zip(tmp_path / "plain.pth", b"\x80\x02}" + op_str("w") + tensor_record(
        "FloatStorage", "0", 1, 0, (1,), (1,)) + b"s.", {"0": bytes(4)})
    with pytest.raises(CheckpointError, match=r"plain\.pth: data\.pkl holds no state dict"):
        read_weights(plain)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match=r"not a torch\.save zip checkpoint"):
        read_weights(tmp_path / "other.zip")
