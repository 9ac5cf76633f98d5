"""Weights from the PyTorch ecosystem onto our ResNet backbone, without PyTorch.

``load_pretrained(model, path)`` reads a torchvision ResNet checkpoint (``resnet18-f37072fd.pth``
and friends: the zip ``torch.save`` writes, read by torch_zip.py without running pickle code) or
a ``.safetensors`` file (the safetensors package's NumPy API), and copies it into the ResNet, or
into a YOLOv1's backbone. Our parameter names are torchvision's (conv1, bn1,
layerN.M.convK / bnK / downsample.0 / downsample.1), so the mapping only drops a
DataParallel ``module.`` prefix and ignores the classifier ``fc``; the detection head keeps its
own initialisation. Every name and shape is checked before a value is copied; the first
mismatch is one ``CheckpointError`` line.
"""
import json
import os
import struct

import numpy as np

from ..serialization import CheckpointError
from ..torch_zip import read_torch_zip

SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                        "I8": 1, "U8": 1, "BOOL": 1}
MAX_HEADER_BYTES = 100 << 20


def _refuse_duplicates(pairs):
    keys = [k for k, _ in pairs]
    twice = [k for k in keys if keys.count(k) > 1]
    if twice:
        raise CheckpointError(f"the name {twice[0]!r} appears twice")
    return dict(pairs)


def check_safetensors_header(path):
    """The header's names, types, shapes and offsets checked against the file's size before
    the safetensors package reads (and allocates) anything."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file (header length {length})")
        try:
            header = json.loads(f.read(length), object_pairs_hook=_refuse_duplicates)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except ValueError as e:
            raise CheckpointError(f"{path}: the safetensors header is not JSON ({e})") from None
    data_bytes = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        need = int(np.prod(shape, dtype=np.int64)) * SAFETENSORS_ITEMSIZE.get(dtype, 0)
        if dtype not in SAFETENSORS_ITEMSIZE or end - begin != need or not 0 <= begin <= end:
            raise CheckpointError(f"{path}: {name} ({dtype} {shape}) does not match its "
                                  f"offsets {begin}..{end}")
        if end > data_bytes:
            raise CheckpointError(f"{path}: {name} ends at byte {end}, past the file's "
                                  f"{data_bytes} bytes of data")


def read_safetensors(path):
    check_safetensors_header(path)
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package; "
                              "pip install safetensors") from None
    return load_file(str(path))


def read_weights(path):
    """{name: NumPy array} from a ``.safetensors`` file or a ``torch.save`` zip."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    if str(path).endswith(".safetensors"):
        return read_safetensors(path)
    return read_torch_zip(path)


def _renamed(weights, where):
    """Without DataParallel's ``module.`` prefix; two names becoming one is refused."""
    out = {}
    for name, value in weights.items():
        short = name[len("module."):] if name.startswith("module.") else name
        if short in out:
            raise CheckpointError(f"{where}: {name!r} and another entry both name {short!r}")
        out[short] = value
    return out


def matched_weights(backbone, weights, where):
    """The file's arrays by our names, every name and shape checked; ``fc`` is ignored."""
    weights = {k: v for k, v in _renamed(weights, where).items() if not k.startswith("fc.")}
    own = {k: v for k, v in backbone.state_dict().items() if not k.startswith("fc.")}
    unexpected = [k for k in weights if k not in own]
    if unexpected:
        raise CheckpointError(f"{where}: {unexpected[0]} has no place in this backbone "
                              f"(a {type(backbone).__name__} with {len(own)} entries)")
    # num_batches_tracked: older torchvision files lack it, and inference never reads it
    missing = [k for k in own if k not in weights and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(f"{where}: the file has no {missing[0]}")
    for name, value in weights.items():
        if tuple(value.shape) != tuple(own[name].shape):
            raise CheckpointError(f"{where}: {name} is {tuple(value.shape)} in the file but "
                                  f"{tuple(own[name].shape)} here (another depth or width?)")
    return weights


def check_pretrained(path, backbone="resnet18", width=1.0):
    """The file's weights by our names, checked against a ``backbone`` ResNet of ``width`` (built
    without initialising it), before a run reads its data; ``copy_weights`` loads them."""
    from ..nn import init
    from .resnet import resnet18, resnet34, resnet50
    with init.skip_init():
        net = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}[backbone](
            width=width, include_top=False)
    return matched_weights(net, read_weights(path), str(path))


def copy_weights(model, weights):
    """Copy checked weights into ``model``'s backbone (a ResNet, or a YOLOv1's); returns the
    top-level layers that came from the file, e.g. ['bn1', 'conv1', 'layer1', ...]."""
    backbone = getattr(model, "backbone", model)
    backbone.load_state_dict(weights, strict=False)
    return sorted({name.split(".")[0] for name in weights})


def load_pretrained(model, path):
    """Read the file, check it against ``model``'s backbone and copy it there; returns the
    layers that came from the file, as ``copy_weights`` does."""
    backbone = getattr(model, "backbone", model)
    return copy_weights(model, matched_weights(backbone, read_weights(path), str(path)))


def save_backbone(model, path):
    """Write ``model``'s backbone (a ResNet, or a YOLOv1's) as a ``.safetensors`` file in
    torchvision's names (no ``fc``), the file ``load_pretrained`` and ``train --pretrained``
    read: a backbone trained here becomes a starting point like ImageNet's."""
    backbone = getattr(model, "backbone", model)
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise CheckpointError(f"{path}: writing .safetensors needs the safetensors package; "
                              "pip install safetensors") from None
    state = {k: np.array(v, order="C") for k, v in backbone.state_dict().items()
             if not k.startswith("fc.")}
    save_file(state, str(path), metadata={"format": "torchvision ResNet backbone, no fc"})
    return path
