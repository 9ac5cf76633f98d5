"""The model for other runtimes (ONNX) and weights from other frameworks."""
from .onnx_graph import ExportError

__all__ = ["ExportError"]
