"""Compare two `tinygrad-yolo detect` output folders: the same images, the same objects.

Made for checking a deployment artefact against the checkpoint it came from:

    tinygrad-yolo export --weights RUN/best.npz --with-postprocess
    tinygrad-yolo detect --weights RUN/best.npz IMAGES --out det_npz --save-txt
    tinygrad-yolo detect --weights RUN/model.onnx IMAGES --out det_onnx --save-txt
    python benchmarks/compare_onnx_detect.py det_npz det_onnx

Per image, the detections of each class are paired (nearest box first); it reports the number
of images and detections, the largest box difference (in units of the image side, from the
YOLO-txt labels when both folders have them, else from the JSON's pixel boxes, which are
rounded to 0.1 px) and the largest score difference, and exits 1 when an image's detections
differ in number or class, or a difference exceeds --tol. One JSON line on stdout.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np


def read_folder(folder):
    """{output path relative to the folder: (classes, boxes normalised xyxy, scores)}."""
    folder = Path(folder)
    records = json.loads((folder / "detections.json").read_text())
    out = {}
    for r in records:
        rel = Path(r["output"]).resolve().relative_to(folder.resolve())
        dets = r["detections"]
        classes = np.array([d["class_id"] for d in dets], dtype=np.int64)
        scale = np.array([r["width"], r["height"]] * 2, dtype=np.float64)
        boxes = np.array([d["box"] for d in dets], dtype=np.float64).reshape(-1, 4) / scale
        scores = np.array([d["score"] for d in dets], dtype=np.float64)
        txt = folder / "labels" / rel.with_suffix(".txt")
        exact = txt.is_file()
        if exact:  # 6 decimals instead of 0.1 px
            rows = np.array(txt.read_text().split(), dtype=np.float64).reshape(-1, 6)
            cxcy, wh = rows[:, 1:3], rows[:, 3:5]
            classes, scores = rows[:, 0].astype(np.int64), rows[:, 5]
            boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
        out[str(rel)] = (classes, boxes, scores, exact, max(r["width"], r["height"]))
    return out


def pair(a, b):
    """Index pairs matching each detection of ``a`` to the nearest unused one of ``b`` of its
    class, or None when the classes don't pair up one to one."""
    (ca, ba, _), (cb, bb, _) = a, b
    if sorted(ca.tolist()) != sorted(cb.tolist()):
        return None
    used, pairs = set(), []
    for i in range(len(ca)):
        candidates = [j for j in range(len(cb)) if cb[j] == ca[i] and j not in used]
        j = min(candidates, key=lambda j: np.abs(ba[i] - bb[j]).max())
        used.add(j)
        pairs.append((i, j))
    return pairs


def compare(folder_a, folder_b, tol=1e-4):
    a, b = read_folder(folder_a), read_folder(folder_b)
    report = {"images": len(a), "detections": 0, "max_box_diff": 0.0, "max_score_diff": 0.0,
              "differing_images": []}
    if sorted(a) != sorted(b):
        report["differing_images"] = sorted(set(a) ^ set(b))
        return report, False
    for image in sorted(a):
        (ca, ba, sa, exact_a, side), (cb, bb, sb, exact_b, _) = a[image], b[image]
        pairs = pair((ca, ba, sa), (cb, bb, sb))
        if pairs is None:
            report["differing_images"].append(image)
            continue
        report["detections"] += len(pairs)
        rounding = 0.0 if exact_a and exact_b else 0.05 / side  # JSON boxes: 0.1 px
        for i, j in pairs:
            box = float(np.abs(ba[i] - bb[j]).max()) - rounding
            report["max_box_diff"] = max(report["max_box_diff"], box)
            report["max_score_diff"] = max(report["max_score_diff"], abs(float(sa[i] - sb[j])))
    # scores are written with 4 decimals: a difference of one in the last digit is rounding
    same = (not report["differing_images"] and report["max_box_diff"] <= tol
            and report["max_score_diff"] <= tol + 1e-4 + 1e-9)
    return report, same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder_a", help="a detect --out folder (e.g. from best.npz)")
    parser.add_argument("folder_b", help="another (e.g. from model.onnx)")
    parser.add_argument("--tol", type=float, default=1e-4,
                        help="largest box difference allowed, in units of the image side")
    args = parser.parse_args(argv)
    for folder in (args.folder_a, args.folder_b):
        if not (Path(folder) / "detections.json").is_file():
            print(f"compare_onnx_detect: {folder} holds no detections.json (a detect --out "
                  f"folder?)", file=sys.stderr)
            return 2
    report, same = compare(args.folder_a, args.folder_b, args.tol)
    print(json.dumps({**report, "same": same}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
