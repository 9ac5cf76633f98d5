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
checkpoint intact.
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
    raise TypeError(f"tg.save can't store a {type(obj).__name__} (at {'/'.join(path) or '<root>'}): "
                    "use dicts, lists, tuples, arrays, Tensors, numbers, strings, bools or None")


def _store(arr, path, arrays):
    base = "/".join(path) or "value"
    name, k = base, 1
    while name in arrays or name == STRUCTURE_KEY:
        name, k = f"{base}#{k}", k + 1
    arrays[name] = arr
    return name


def _decode(node, arrays):
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict):
        if "__dict__" in node:
            return {k: _decode(v, arrays) for k, v in node["__dict__"]}
        if "__tuple__" in node:
            return tuple(_decode(v, arrays) for v in node["__tuple__"])
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
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
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


def load(path):
    """Load what ``save`` wrote (arrays come back as NumPy arrays). A plain ``np.savez``
    archive loads as a flat dict of its arrays. Raises CheckpointError (naming the file)
    when the file is truncated, corrupt or not an .npz archive."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path!r} is a single .npy array, not a .npz checkpoint")
        with npz:
            arrays = {name: npz[name] for name in npz.files}  # reading every entry checks every CRC
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError, struct.error,
            zlib.error) as e:
        raise CheckpointError(f"{path!r} is not a readable .npz checkpoint (truncated, corrupt or "
                              f"another format): {type(e).__name__}: {e}") from None
    if STRUCTURE_KEY not in arrays:
        return arrays
    try:
        structure = json.loads(str(arrays.pop(STRUCTURE_KEY)[()]))
        if structure.get("format") != FORMAT:
            raise ValueError(f"unknown format {structure.get('format')!r}")
        return _decode(structure["root"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path!r}: the checkpoint's structure entry is damaged: "
                              f"{type(e).__name__}: {e}") from None
