"""A small writer of ONNX graphs: nodes, weights and unique names, over the onnx package's helpers.

The exporter (onnx.py) walks the model's own modules and calls ``node`` once per operation;
this file only knows how ONNX spells a graph, nothing about the models.
"""
import numpy as np

INSTALL_HINT = 'pip install "tinygrad_yolo[export]"'


class ExportError(ValueError):
    """A model, a file or an environment that can't be exported or run: one line saying why."""


def require(package):
    """Import ``onnx`` or ``onnxruntime``, or raise one line naming the extra that installs it."""
    try:
        if package == "onnx":
            import onnx
            return onnx
        import onnxruntime
        return onnxruntime
    except ImportError:
        raise ExportError(f"{package} is not installed; {INSTALL_HINT} adds it") from None


class GraphWriter:
    """Collects nodes and initializers; every value gets a fresh readable name."""

    def __init__(self):
        self.onnx = require("onnx")
        self.nodes, self.weights = [], []
        # reserved: the graph's inputs and outputs, which readers look up by name
        self.used = {"images", "grid", "boxes", "scores", "classes", "image_index",
                     "conf_threshold", "iou_threshold"}

    def name(self, hint):
        hint = hint.replace(".", "_") or "value"
        name, k = hint, 1
        while name in self.used:
            k += 1
            name = f"{hint}_{k}"
        self.used.add(name)
        return name

    def weight(self, hint, array):
        """A constant tensor stored in the file; returns its name."""
        name = self.name(hint)
        self.weights.append(self.onnx.numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def node(self, op, inputs, hint=None, outputs=1, output=None, **attributes):
        """Append one ONNX node; returns its output name (or names when ``outputs`` > 1).
        ``output``: an exact name, for the graph's outputs, which readers look up by name."""
        names = [output] if output else [
            self.name(f"{hint or op.lower()}" + (f"_{k}" if outputs > 1 else ""))
            for k in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names

    def model(self, inputs, outputs, metadata, opset):
        """The finished ModelProto: ``inputs``/``outputs`` as (name, elem type, shape) triples."""
        helper = self.onnx.helper

        def info(name, elem_type, shape):
            return helper.make_tensor_value_info(name, elem_type, shape)
        graph = helper.make_graph(self.nodes, "tinygrad_yolo", [info(*i) for i in inputs],
                                  [info(*o) for o in outputs], initializer=self.weights)
        model = helper.make_model(graph, producer_name="tinygrad_yolo",
                                  opset_imports=[helper.make_opsetid("", opset)])
        helper.set_model_props(model, {key: str(value) for key, value in metadata.items()})
        return model
