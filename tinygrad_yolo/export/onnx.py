"""A YOLOv1 (or a ResNet) written as an ONNX file, module by module.

Each module of the model becomes the ONNX nodes that compute what its ``forward`` computes in
eval mode; nothing is traced. Batch norm is folded into the convolution before it
(w * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps)): the file is an inference
graph, a folded conv is one op instead of two in every runtime, and ONNX Runtime would fold it
anyway. A batch norm without a convolution before it stays a ``BatchNormalization`` node.

``with_postprocess`` appends the decode (cell offsets, squared sizes, p(class) * confidence)
and ``NonMaxSuppression`` per class, so the file maps images to boxes, scores and classes;
without it the output is the raw (N, S, S, B*5 + C) grid. The metadata carries what a reader
needs: class names, S, B, C, the input size and the input's normalisation.
"""
import json

import numpy as np

from .. import nn
from ..models.resnet import BasicBlock, Bottleneck, PadShortcut, ResNet
from ..models.yolo import YOLOv1
from .onnx_graph import ExportError, GraphWriter, require

FORMAT = "tinygrad_yolo.yolov1"  # the metadata key that marks a file as one of ours
INPUT_NORMALISATION = ("RGB, resized (stretched) to img_size x img_size, NCHW float32, "
                       "pixel values / 255 (0..1), no mean or std")
DEFAULT_OPSET = 17
MIN_OPSET = 13  # Unsqueeze with its axes as an input, NonMaxSuppression, GatherND


def sub(path, name):
    """The dotted name of a child module, as named_parameters spells it."""
    return f"{path}.{name}" if path else name


def _array(tensor):
    return np.asarray(tensor.numpy(), dtype=np.float64)


def conv(w, module, x, path, bn=None):
    """Conv2d, with the following BatchNorm2d ``bn`` folded into its weight and bias."""
    weight = _array(module.weight)
    bias = _array(module.bias) if module.bias is not None else np.zeros(len(weight))
    if bn is not None:
        scale = _array(bn.weight) / np.sqrt(_array(bn.running_var) + bn.eps)
        weight = weight * scale[:, None, None, None]
        bias = (bias - _array(bn.running_mean)) * scale + _array(bn.bias)
    (ph, pw), names = module.padding, [sub(path, "weight"), sub(path, "bias")]
    return w.node("Conv", [x, w.weight(names[0], weight.astype(np.float32)),
                           w.weight(names[1], bias.astype(np.float32))], hint=path,
                  kernel_shape=list(module.kernel_size), strides=list(module.stride),
                  pads=[ph, pw, ph, pw], dilations=list(module.dilation))


def batch_norm(w, module, x, path):
    inputs = [module.weight, module.bias, module.running_mean, module.running_var]
    names = [sub(path, s) for s in ("weight", "bias", "running_mean", "running_var")]
    return w.node("BatchNormalization", [x] + [w.weight(n, _array(t).astype(np.float32))
                                               for n, t in zip(names, inputs)],
                  hint=path, epsilon=module.eps)


def sequential(w, module, x, path):
    """In order; a Conv2d directly followed by a BatchNorm2d is written as one folded Conv."""
    children = list(module.named_children())
    k = 0
    while k < len(children):
        name, child = children[k]
        after = children[k + 1][1] if k + 1 < len(children) else None
        if isinstance(child, nn.Conv2d) and isinstance(after, nn.BatchNorm2d):
            x = conv(w, child, x, sub(path, name), bn=after)
            k += 2
            continue
        x = emit(w, child, x, sub(path, name))
        k += 1
    return x


def linear(w, module, x, path):
    inputs = [x, w.weight(sub(path, "weight"), _array(module.weight).astype(np.float32))]
    if module.bias is not None:
        inputs.append(w.weight(sub(path, "bias"), _array(module.bias).astype(np.float32)))
    return w.node("Gemm", inputs, hint=path, transB=1)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def max_pool(w, module, x, path):
    size, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    pad = _pair(module.padding)
    return w.node("MaxPool", [x], hint=path, kernel_shape=list(size), strides=list(stride),
                  pads=[pad[0], pad[1], pad[0], pad[1]])


def global_pool(w, module, x, path):
    if module.output_size not in (1, (1, 1)):
        raise ExportError(f"export: {path} (AdaptiveAvgPool2d to {module.output_size}) has no "
                          "ONNX equivalent; only global pooling (output_size 1) has")
    return w.node("GlobalAveragePool", [x], hint=path)


def pad_shortcut(w, module, x, path):
    """Shortcut "A": every stride-th pixel, then zero channels appended."""
    if module.stride != 1:
        big = np.iinfo(np.int64).max
        x = w.node("Slice", [x, w.weight(sub(path, "starts"), np.array([0, 0], np.int64)),
                             w.weight(sub(path, "ends"), np.array([big, big], np.int64)),
                             w.weight(sub(path, "axes"), np.array([2, 3], np.int64)),
                             w.weight(sub(path, "steps"), np.full(2, module.stride, np.int64))],
                   hint=sub(path, "subsample"))
    if module.out_ch != module.in_ch:
        pads = np.array([0, 0, 0, 0, 0, module.out_ch - module.in_ch, 0, 0], np.int64)
        x = w.node("Pad", [x, w.weight(sub(path, "pads"), pads)], hint=sub(path, "pad"))
    return x


def _block_end(w, module, out, x, path, last):
    """bn_act's add and ReLU: relu(conv_last(out) folded with bn_last + shortcut(x))."""
    out = conv(w, getattr(module, f"conv{last}"), out, sub(path, f"conv{last}"),
               bn=getattr(module, f"bn{last}"))
    if module.residual:
        short = x if module.downsample is None else emit(w, module.downsample, x,
                                                         sub(path, "downsample"))
        out = w.node("Add", [out, short], hint=sub(path, "add"))
    return w.node("Relu", [out], hint=sub(path, "relu"))


def basic_block(w, module, x, path):
    out = w.node("Relu", [conv(w, module.conv1, x, sub(path, "conv1"), bn=module.bn1)])
    return _block_end(w, module, out, x, path, last=2)


def bottleneck(w, module, x, path):
    out = w.node("Relu", [conv(w, module.conv1, x, sub(path, "conv1"), bn=module.bn1)])
    out = w.node("Relu", [conv(w, module.conv2, out, sub(path, "conv2"), bn=module.bn2)])
    return _block_end(w, module, out, x, path, last=3)


def resnet(w, module, x, path):
    x = w.node("Relu", [conv(w, module.conv1, x, sub(path, "conv1"), bn=module.bn1)])
    x = max_pool(w, module.maxpool, x, sub(path, "maxpool"))
    for i in range(module.num_stages):
        x = sequential(w, getattr(module, f"layer{i + 1}"), x, sub(path, f"layer{i + 1}"))
    if not module.include_top:
        return x
    x = w.node("Flatten", [global_pool(w, module.avgpool, x, sub(path, "avgpool"))], axis=1)
    return linear(w, module.fc, x, sub(path, "fc"))


def yolo(w, module, x, path):
    y = sequential(w, module.head, sequential(w, module.extra, resnet(
        w, module.backbone, x, sub(path, "backbone")), sub(path, "extra")), sub(path, "head"))
    if module.config["head"] == "conv":
        return w.node("Transpose", [y], hint="grid", perm=[0, 2, 3, 1])
    shape = np.array([-1, module.S, module.S, module.B * 5 + module.C], np.int64)
    return w.node("Reshape", [y, w.weight("grid_shape", shape)], hint="grid")


def _simple(op, **attributes):
    return lambda w, module, x, path: w.node(op, [x], hint=path, **attributes)


CONVERTERS = {
    nn.Sequential: sequential, nn.Conv2d: conv, nn.BatchNorm2d: batch_norm, nn.Linear: linear,
    nn.MaxPool2d: max_pool, nn.AdaptiveAvgPool2d: global_pool, nn.ReLU: _simple("Relu"),
    nn.Flatten: lambda w, m, x, path: w.node("Flatten", [x], hint=path, axis=m.start_dim),
    nn.LeakyReLU: lambda w, m, x, path: w.node("LeakyRelu", [x], hint=path,
                                              alpha=m.negative_slope),
    nn.Dropout: lambda w, m, x, path: x,  # the identity in eval mode
    BasicBlock: basic_block, Bottleneck: bottleneck, PadShortcut: pad_shortcut, ResNet: resnet,
    YOLOv1: yolo,
}


def emit(w, module, x, path):
    """The nodes computing ``module(x)`` in eval mode; one line naming a module without them."""
    convert = CONVERTERS.get(type(module))
    if convert is None:
        raise ExportError(f"export: {path or 'the model'} is a {type(module).__name__}, an op "
                          "with no ONNX equivalent in this exporter")
    return convert(w, module, x, path)


def yolo_metadata(model, classes, postprocess):
    """What a reader needs to feed the file and read its output."""
    config = model.config
    return {"format": FORMAT, "classes": json.dumps(list(classes)), "S": model.S, "B": model.B,
            "C": model.C, "img_size": model.img_size, "input": INPUT_NORMALISATION,
            "config": json.dumps(config), "batch_norm": "folded into the convolutions",
            "output": "boxes, scores, classes, image_index" if postprocess else
            "grid (N, S, S, B*5 + C): per cell B boxes (x, y, sqrt_w, sqrt_h, conf), C scores"}


def build_onnx(model, classes=None, opset=DEFAULT_OPSET, dynamic_batch=False,
               with_postprocess=False, conf_threshold=0.25, iou_threshold=0.5):
    """The ONNX ModelProto of a YOLOv1 ``model`` in eval mode (its weights as float32)."""
    from .onnx_postprocess import decode_nodes, nms_nodes
    if not isinstance(model, YOLOv1):
        raise ExportError(f"export: expected a YOLOv1 detector, got a {type(model).__name__}")
    classes = list(classes) if classes is not None else [str(c) for c in range(model.C)]
    if len(classes) != model.C:
        raise ExportError(f"export: {len(classes)} class names for a model with C = {model.C}")
    w, onnx = GraphWriter(), require("onnx")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(f"export: opset {opset} is outside {MIN_OPSET}..{newest} (the oldest "
                          "with the ops used, the newest this onnx package knows)")
    float32, int64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    batch = "N" if dynamic_batch else 1
    images = ("images", float32, [batch, 3, model.img_size, model.img_size])
    grid = yolo(w, model, "images", "")
    if not with_postprocess:
        w.node("Identity", [grid], output="grid")
        outputs = [("grid", float32, [batch, model.S, model.S, model.B * 5 + model.C])]
        return w.model([images], outputs, yolo_metadata(model, classes, False), opset)
    w.weights += [onnx.numpy_helper.from_array(np.array([v], np.float32), name) for name, v in
                  (("conf_threshold", conf_threshold), ("iou_threshold", iou_threshold))]
    nms_nodes(w, *decode_nodes(w, grid, model.S, model.B, model.C),
              "conf_threshold", "iou_threshold")
    inputs = [images, ("conf_threshold", float32, [1]), ("iou_threshold", float32, [1])]
    outputs = [("boxes", float32, ["K", 4]), ("scores", float32, ["K"]),
               ("classes", int64, ["K"]), ("image_index", int64, ["K"])]
    metadata = {**yolo_metadata(model, classes, True), "conf_threshold": conf_threshold,
                "iou_threshold": iou_threshold}
    return w.model(inputs, outputs, metadata, opset)


def export_onnx(model, path, classes=None, **options):
    """Write ``model`` to ``path`` as ONNX, checked by ``onnx.checker`` (full check) first;
    ``options`` as for ``build_onnx``. Returns the path."""
    onnx = require("onnx")
    was_training = model.training
    model.eval()
    try:
        proto = build_onnx(model, classes, **options)
    finally:
        model.train(was_training)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return path
