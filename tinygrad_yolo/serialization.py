"""Checkpoints without pickle: ``tg.save(obj, path)`` / ``tg.load(path)``.

The file is an ordinary ``.npz`` (a zip of ``.npy`` arrays) read with
``allow_pickle=False``, so loading a stranger's checkpoint can't run code. The
nesting (dicts, lists, tuples) and the plain values (int, float, str, bool,
None) live in one JSON string stored as the array ``__structure__``; every
array or Tensor becomes its own entry, named after its path for readability
(``model/layer1.0.conv1.weight``), and the JSON refers to it by that name.

JSON nodes: plain JSON for str/int/float/bool/None, a JSON list for a list,
``{"__dict__": [[key, node], ...]}`` (keys str or int, order kept),
``{"__tuple__": [...]}``, ``{"__array__": name}`` and ``{"__scalar__": name}``
(a NumPy scalar such as np.float32(0.5), kept with its dtype).

Writes are atomic: the archive goes to a temporary file in the same directory,
is fsync'ed, then renamed over ``path`` — a crash mid-save leaves the previous
checkpoint intact. The file gets the permissions of any new file (0666 less the umask).

Loading a stranger's file is safe: before any array is read, every entry's ``.npy`` header
is checked against the size the archive records for it (a header declaring terabytes in a
few bytes is refused), deflated entries may not expand beyond ``MAX_EXPANSION`` times their
stored size, the total may not exceed ``max_bytes``, and the JSON structure's size and
nesting are bounded. Every failure is a ``CheckpointError`` naming the file.
"""
import json
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from . import backend
from .tensor import Tensor

STRUCTURE_KEY = "__structure__"
FORMAT = "tinygrad_yolo.checkpoint/1"
MAX_BYTES = 16 << 30           # default cap on what one checkpoint may expand to in memory
MAX_EXPANSION = 100            # a deflated entry larger than this times its stored bytes is a bomb
MAX_STRUCTURE_BYTES = 64 << 20
MAX_DEPTH = 64                 # nesting of the structure (a model state is 3-4 levels deep)


class CheckpointError(ValueError):
    """A file that is not a readable tinygrad_yolo checkpoint (truncated, corrupt, not .npz)."""


# ---- encoding -------------------------------------------------------------------
def _encode(obj, path, arrays):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, np.generic):
        return obj
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.generic):
        return {"__scalar__": _store(np.asarray(obj), path, arrays)}
    if hasattr(obj, "__array_interface__") or backend.is_cuda_array(obj):
        arr = backend.to_numpy(obj)
        if arr.dtype.hasobject:
            raise TypeError(f"tg.save: the array at {'/'.join(path) or '<root>'} has dtype object, "
                            "which can't be saved without pickle")
        return {"__array__": _store(arr, path, arrays)}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"tg.save: dict keys must be str or int, got {k!r} at "
                                f"{'/'.join(path) or '<root>'}")
            items.append([k, _encode(v, path + [str(k)], arrays)])
        return {"__dict__": items}
    if isinstance(obj, list):
        return [_encode(v, path + [str(i)], arrays) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, path + [str(i)], arrays) for i, v in enumerate(obj)]}
    raise TypeError(f"tg.save can't store a {type(obj).__name__} "
                    f"(at {'/'.join(path) or '<root>'}): use dicts, lists, tuples, arrays, "
                    "Tensors, numbers, strings, bools or None")


def _store(arr, path, arrays):
    base = "/".join(path) or "value"
    name, k = base, 1
    while name in arrays or name == STRUCTURE_KEY:
        name, k = f"{base}#{k}", k + 1
    arrays[name] = arr
    return name


def _decode(node, arrays, depth=0):
    if depth > MAX_DEPTH:
        raise ValueError(f"the structure is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, list):
        return [_decode(v, arrays, depth + 1) for v in node]
    if isinstance(node, dict):
        if "__dict__" in node:
            return {k: _decode(v, arrays, depth + 1) for k, v in node["__dict__"]}
        if "__tuple__" in node:
            return tuple(_decode(v, arrays, depth + 1) for v in node["__tuple__"])
        if "__array__" in node:
            return arrays[node["__array__"]]
        if "__scalar__" in node:
            return arrays[node["__scalar__"]][()]
        raise ValueError(f"unknown node {sorted(node)}")
    return node


# ---- files ----------------------------------------------------------------------
def _write_npz(f, arrays):
    """Write the archive to the open binary file ``f`` (a seam the atomicity test patches)."""
    np.savez(f, **arrays)


def save(obj, path):
    """Save nested dicts/lists/tuples of arrays, Tensors and plain values to ``path``, atomically.
    Returns ``path``.

    The file is always a NumPy ``.npz`` archive (a zip of ``.npy`` arrays plus a JSON structure
    entry; see the module docstring), whatever the name ends in: ``tg.save(sd, "model.pt")``
    writes ``model.pt`` exactly (no ``.npz`` is appended), but it is not a PyTorch pickle --
    ``torch.load`` can't read it; ``tg.load`` and ``np.load`` can."""
    path = os.fspath(path)
    arrays = {}
    structure = {"format": FORMAT, "root": _encode(obj, [], arrays)}
    # allow_nan: NaN/inf floats round-trip (Python's json reads its own NaN/Infinity back).
    arrays[STRUCTURE_KEY] = np.array(json.dumps(structure, allow_nan=True))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # some filesystems can't fsync a directory; the data itself is synced
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_sizes(path, max_bytes):
    """Refuse, before reading any array, an archive whose entries would expand beyond reason."""
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(
                    MAX_EXPANSION * info.compress_size, 1 << 20):
                raise CheckpointError(f"{path!r}: entry {name!r} expands from "
                                      f"{info.compress_size:,} to {info.file_size:,} bytes "
                                      f"(a decompression bomb?)")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:  # 3.0 (utf-8 field names): NumPy has no public reader for its header
                    shape, _, dtype = np.lib.format._read_array_header(f, version)
                header = f.tell()
            if dtype.hasobject:
                raise CheckpointError(f"{path!r}: entry {name!r} holds Python objects "
                                      f"(dtype {dtype}), which can only be read with pickle; "
                                      f"refused")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared != info.file_size - header:
                raise CheckpointError(f"{path!r}: entry {name!r} declares a {shape} {dtype} array "
                                      f"({declared:,} bytes) but holds "
                                      f"{info.file_size - header:,} bytes")
            total += declared
            if total > max_bytes:
                raise CheckpointError(f"{path!r}: the arrays add up to more than {max_bytes:,} "
                                      f"bytes; refused (pass a larger max_bytes to tg.load if it "
                                      f"is yours)")


def load(path, max_bytes=MAX_BYTES):
    """Load what ``save`` wrote (arrays come back as NumPy arrays). A plain ``np.savez``
    archive loads as a flat dict of its arrays. Raises CheckpointError (naming the file)
    when the file is truncated, corrupt, not an .npz archive, or would expand beyond
    ``max_bytes`` in memory."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        if zipfile.is_zipfile(path):
            _check_sizes(path, max_bytes)
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path!r} is a single .npy array, not a .npz checkpoint")
        with npz:
            arrays = {name: npz[name] for name in npz.files}  # reading every entry checks every CRC
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError, struct.error,
            zlib.error, MemoryError) as e:
        raise CheckpointError(f"{path!r} is not a readable .npz checkpoint (truncated, corrupt or "
                              f"another format): {type(e).__name__}: {e}") from None
    if STRUCTURE_KEY not in arrays:
        return arrays
    try:
        text = arrays.pop(STRUCTURE_KEY)
        if text.dtype.kind != "U" or text.nbytes > 4 * MAX_STRUCTURE_BYTES:
            raise ValueError(f"the structure entry is a {text.dtype} array, not a short string")
        structure = json.loads(str(text[()]))
        if structure.get("format") != FORMAT:
            raise ValueError(f"unknown format {structure.get('format')!r}")
        return _decode(structure["root"], arrays)
    except RecursionError:
        raise CheckpointError(
            f"{path!r}: the checkpoint's structure is nested too deeply") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path!r}: the checkpoint's structure entry is damaged: "
                              f"{type(e).__name__}: {e}") from None
