"""PyTorch's checkpoint format (the zip ``torch.save`` writes) read without PyTorch and
without running pickle code: ``read_torch_zip(path) -> {name: NumPy array}``.

The archive holds ``<root>/data.pkl``, a pickle of the state dict, and one raw little-endian
entry ``<root>/data/<key>`` per storage. A tensor in the pickle is a call of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` whose storage is a
persistent id ``("storage", torch.FloatStorage, key, device, numel)``.

The unpickler accepts only what a weights-only checkpoint contains (the promise of
``torch.load(weights_only=True)``): ``collections.OrderedDict``, the tensor and parameter
rebuild calls and the typed storage classes. Any other global (``os.system``, ...) is refused
by name before anything runs. Unpickling only records the tensors; before a byte of tensor
data is read, every storage is checked against its entry's size in the archive and every
tensor's extent against its storage, duplicate names are refused, and the total is capped.
Every failure is one ``CheckpointError`` line naming the file.
"""
import collections
import io
import os
import pickle
import zipfile

import numpy as np

from .serialization import CheckpointError

MAX_PICKLE_BYTES = 64 << 20   # a state dict's pickle is kilobytes; its tensors live outside it
MAX_TOTAL_BYTES = 16 << 30

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class StorageClass:
    """Stands for ``torch.FloatStorage`` and its siblings: only their element type matters."""

    def __init__(self, name):
        self.name = name
        self.itemsize = 2 if name == "BFloat16Storage" else np.dtype(STORAGE_DTYPES[name]).itemsize


class StorageRef:
    """A storage the pickle refers to, recorded, not read."""

    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel = kind, key, numel


class TensorRecord:
    """One tensor: a view (offset, size, stride, in elements) into a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class UniqueDict(collections.OrderedDict):
    """The state dict: a name given twice in the pickle is a collision, not an overwrite."""

    def __setitem__(self, key, value):
        if key in self:
            raise CheckpointError(f"the name {key!r} appears twice")
        super().__setitem__(key, value)


def _ints(values, what):
    if not isinstance(values, (tuple, list)) or not all(type(v) is int for v in values):
        raise CheckpointError(f"a tensor's {what} is not a tuple of ints: {values!r}")
    return tuple(values)


def rebuild_tensor(storage, offset, size, stride, *_requires_grad_hooks_metadata):
    if not isinstance(storage, StorageRef) or type(offset) is not int or offset < 0:
        raise CheckpointError("a tensor rebuild call without a storage and an offset >= 0")
    return TensorRecord(storage, offset, _ints(size, "size"), _ints(stride, "stride"))


def rebuild_parameter(data, *_requires_grad_hooks):
    if not isinstance(data, TensorRecord):
        raise CheckpointError("a parameter rebuild call without a tensor")
    return data


ALLOWED = {("collections", "OrderedDict"): UniqueDict,
           ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
           ("torch._utils", "_rebuild_parameter"): rebuild_parameter}
ALLOWED.update({("torch", name): StorageClass(name) for name in STORAGE_DTYPES})


class WeightsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise CheckpointError(f"refuses to call {module}.{name}: a weights-only checkpoint "
                                  "holds tensors and dicts, nothing else")
        return ALLOWED[(module, name)]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], StorageClass) and isinstance(pid[2], str)
                and type(pid[4]) is int and pid[4] >= 0):
            raise CheckpointError(f"an unknown persistent id {pid!r:.80}")
        return StorageRef(pid[1], pid[2], pid[4])


def _entries(archive, where):
    """{relative name: ZipInfo} under the archive's single root folder, checked for reuse."""
    infos = archive.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise CheckpointError(f"{where}: the archive holds {twice!r} twice")
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError(f"{where}: not a torch.save zip checkpoint (no <root>/data.pkl)")
    root = pickles[0][:-len("data.pkl")]
    return {i.filename[len(root):]: i for i in infos if i.filename.startswith(root)}


def _unpickle(archive, entries, where):
    info = entries["data.pkl"]
    if info.file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{where}: data.pkl is {info.file_size} bytes, more than a "
                              f"state dict's pickle ({MAX_PICKLE_BYTES} bytes at most)")
    try:
        state = WeightsOnlyUnpickler(io.BytesIO(archive.read(info))).load()
    except CheckpointError as e:
        raise CheckpointError(f"{where}: {e}") from None
    except Exception as e:  # a broken pickle: whatever pickle raises, one line
        raise CheckpointError(f"{where}: data.pkl is not a readable pickle ({e})") from None
    # An OrderedDict, as state_dict() returns: a plain dict's repeated names can't be seen.
    if not isinstance(state, UniqueDict) or not all(
            isinstance(v, TensorRecord) and isinstance(k, str) for k, v in state.items()):
        raise CheckpointError(f"{where}: data.pkl holds no state dict (an OrderedDict of "
                              "named tensors)")
    return state


def _check_sizes(state, entries, archive_bytes, where):
    """Every storage fits its entry, every tensor its storage, the total the cap."""
    total = 0
    for name, t in state.items():
        info = entries.get(f"data/{t.storage.key}")
        need = t.storage.numel * t.storage.kind.itemsize
        if info is None:
            raise CheckpointError(f"{where}: {name}'s storage data/{t.storage.key} is missing")
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > archive_bytes:
            raise CheckpointError(f"{where}: storage data/{t.storage.key} is compressed or "
                                  "larger than the file")
        if need > info.file_size:
            raise CheckpointError(f"{where}: {name}'s storage declares {need} bytes but its entry "
                                  f"holds {info.file_size}")
        if min(t.size + t.stride, default=0) < 0:
            raise CheckpointError(f"{where}: {name} has a negative size or stride")
        last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
        if all(t.size) and last >= t.storage.numel:
            raise CheckpointError(f"{where}: {name} reaches element {last} of a storage of "
                                  f"{t.storage.numel}")
        total += int(np.prod(t.size, dtype=np.int64)) * t.storage.kind.itemsize
    if total > MAX_TOTAL_BYTES:
        raise CheckpointError(f"{where}: the tensors add up to {total} bytes, more than "
                              f"{MAX_TOTAL_BYTES}")


def _storage_array(raw, kind, big_endian):
    if kind.name == "BFloat16Storage":  # NumPy has no bfloat16: its bits are a float32's top half
        bits = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2").astype(np.uint32)
        return (bits << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(STORAGE_DTYPES[kind.name]).newbyteorder(
        ">" if big_endian else "<"))


def read_torch_zip(path):
    """{name: NumPy array} from a ``torch.save`` zip of a state dict (copies, native order)."""
    where = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{where}: not a zip archive; only the zip format torch.save "
                              f"writes (PyTorch >= 1.6) is read ({e})") from None
    with archive:
        entries = _entries(archive, where)
        state = _unpickle(archive, entries, where)
        _check_sizes(state, entries, os.path.getsize(path), where)
        big_endian = "byteorder" in entries and archive.read(entries["byteorder"]) == b"big"
        storages, out = {}, {}
        for name, t in state.items():
            key = t.storage.key
            if key not in storages:
                raw = archive.read(entries[f"data/{key}"])
                storages[key] = _storage_array(raw, t.storage.kind, big_endian)
            base = storages[key]
            view = np.lib.stride_tricks.as_strided(
                base[t.offset:], shape=t.size, strides=[s * base.itemsize for s in t.stride])
            out[name] = np.array(view, dtype=base.dtype.newbyteorder("="))
    return out
