"""An exported file run by ONNX Runtime, giving detections as ``postprocess`` gives them.

Only our own exports are run: a file without the ``format`` metadata ``export_onnx`` writes is
refused in one line, since its input size, normalisation and output layout would be guesses.
"""
import json

import numpy as np

from ..detection import postprocess
from .onnx import FORMAT
from .onnx_graph import ExportError, require


def open_session(path):
    """An ONNX Runtime session on the CPU, warnings off (thresholds given as overridable
    inputs make it warn once per file)."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime raises its own types for unreadable files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"{path}: ONNX Runtime can't read this file ({first})") from None


class OnnxDetector:
    """``detect(images, conf, iou)`` on the (N, 3, img_size, img_size) float32 images the
    metadata describes; ``classes``, ``S``, ``B``, ``C``, ``img_size`` from the metadata."""

    def __init__(self, path):
        self.session = open_session(path)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("format") != FORMAT:
            raise ExportError(f"{path}: not an ONNX file exported by tinygrad_yolo (no "
                              f"format={FORMAT} metadata), so its input and outputs are unknown")
        self.classes = json.loads(meta["classes"])
        self.S, self.B, self.C, self.img_size = (int(meta[k]) for k in ("S", "B", "C", "img_size"))
        names = [o.name for o in self.session.get_outputs()]
        self.with_postprocess = "boxes" in names
        self.batch = self.session.get_inputs()[0].shape[0]  # 1, or a name when dynamic

    def run(self, images, **thresholds):
        feeds = {"images": np.ascontiguousarray(images, dtype=np.float32)}
        feeds.update({k: np.array([v], np.float32) for k, v in thresholds.items()})
        return self.session.run(None, feeds)

    def detect(self, images, conf_threshold=0.25, iou_threshold=0.5, max_detections=100):
        """Per image a (K, 6) float32 array [x1, y1, x2, y2, score, class], best first."""
        images = np.asarray(images, dtype=np.float32)
        if self.batch == 1 and len(images) > 1:
            return [d for x in images for d in self.detect(x[None], conf_threshold,
                                                           iou_threshold, max_detections)]
        if not self.with_postprocess:
            return postprocess(self.run(images)[0], S=self.S, B=self.B, C=self.C,
                               conf_threshold=conf_threshold, iou_threshold=iou_threshold,
                               max_detections=max_detections)
        boxes, scores, classes, image = self.run(images, conf_threshold=conf_threshold,
                                                 iou_threshold=iou_threshold)
        rows = np.concatenate([boxes, scores[:, None], classes[:, None]], axis=1)
        found = []
        for n in range(len(images)):
            mine = rows[image == n]
            found.append(mine[np.argsort(-mine[:, 4], kind="stable")][:max_detections]
                         .astype(np.float32))
        return found
