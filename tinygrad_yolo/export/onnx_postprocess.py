"""The decode and per-class NMS of detection/postprocess.py, as ONNX nodes after the grid.

Same arithmetic as ``decode``: box centres from the cell offsets, sizes squared (the net
predicts sqrt(w), sqrt(h)), corners clipped to [0, 1], score = relu(p(class)) * relu(conf);
then ONNX's ``NonMaxSuppression`` per class, which keeps a box when its score is above the
score threshold and drops one whose IoU with a kept box of its class is above the IoU
threshold, as ``batched_nms`` does. The thresholds are graph inputs with defaults, so a
runtime may pass its own. Outputs are one row per kept detection of any image:
boxes (K, 4) xyxy in [0, 1], scores (K,), classes (K,) and the image index (K,), in the
runtime's order (sort by score to compare with ``postprocess``).
"""
import numpy as np

MAX_PER_CLASS = 100  # per image and class; postprocess keeps the best 100 per image after


def _slice(w, x, start, end, axis, hint):
    return w.node("Slice", [x, w.weight(hint + "_start", np.array([start])),
                            w.weight(hint + "_end", np.array([end])),
                            w.weight(hint + "_axis", np.array([axis]))], hint=hint)


def decode_nodes(w, grid, S, B, C):
    """grid (N, S, S, B*5+C) -> boxes (N, S*S*B, 4) and scores (N, C, S*S*B)."""
    boxes = w.node("Reshape", [_slice(w, grid, 0, B * 5, 3, "box_values"),
                               w.weight("box_shape", np.array([-1, S, S, B, 5], np.int64))])
    part = {k: _slice(w, boxes, i, i + 1, 4, k)
            for i, k in enumerate(("x", "y", "sqrt_w", "sqrt_h", "conf"))}
    cells = np.arange(S, dtype=np.float32)
    size = w.weight("S", np.array(S, np.float32))
    column = w.weight("column", cells.reshape(1, 1, S, 1, 1))
    row = w.weight("row", cells.reshape(1, S, 1, 1, 1))
    cx = w.node("Div", [w.node("Add", [part["x"], column]), size], hint="cx")
    cy = w.node("Div", [w.node("Add", [part["y"], row]), size], hint="cy")
    half = w.weight("half", np.array(0.5, np.float32))
    half_w = w.node("Mul", [w.node("Mul", [part["sqrt_w"], part["sqrt_w"]], hint="w"), half])
    half_h = w.node("Mul", [w.node("Mul", [part["sqrt_h"], part["sqrt_h"]], hint="h"), half])
    corners = [w.node("Sub", [cx, half_w], hint="x1"), w.node("Sub", [cy, half_h], hint="y1"),
               w.node("Add", [cx, half_w], hint="x2"), w.node("Add", [cy, half_h], hint="y2")]
    xyxy = w.node("Clip", [w.node("Concat", corners, axis=4),
                           w.weight("zero", np.array(0, np.float32)),
                           w.weight("one", np.array(1, np.float32))])
    xyxy = w.node("Reshape", [xyxy, w.weight("boxes_shape", np.array([-1, S * S * B, 4]))],
                  hint="decoded_boxes")
    probs = w.node("Relu", [_slice(w, grid, B * 5, B * 5 + C, 3, "class_values")])
    probs = w.node("Unsqueeze", [probs, w.weight("box_axis", np.array([3]))])  # (N, S, S, 1, C)
    scores = w.node("Mul", [w.node("Relu", [part["conf"]]), probs])          # (N, S, S, B, C)
    scores = w.node("Reshape", [scores, w.weight("scores_shape", np.array([-1, S * S * B, C]))])
    return xyxy, w.node("Transpose", [scores], hint="decoded_scores", perm=[0, 2, 1])


def nms_nodes(w, boxes, scores, conf_input, iou_input):
    """Per-class NMS; returns the names of the boxes, scores, classes and image index outputs."""
    limit = w.weight("max_per_class", np.array([MAX_PER_CLASS]))
    selected = w.node("NonMaxSuppression", [boxes, scores, limit, iou_input, conf_input],
                      hint="selected")                                # (K, 3): image, class, box
    image_and_box = w.node("Gather", [selected, w.weight("image_box", np.array([0, 2]))], axis=1)
    return (w.node("GatherND", [boxes, image_and_box], output="boxes"),
            w.node("GatherND", [scores, selected], output="scores"),
            w.node("Gather", [selected, w.weight("class_column", np.array(1))], axis=1,
                   output="classes"),
            w.node("Gather", [selected, w.weight("image_column", np.array(0))], axis=1,
                   output="image_index"))
