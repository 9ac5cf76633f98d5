"""Plumbing shared by the demos: command-line flags, the output folder, synthetic images,
and the small detector of demos 6 and 8. Nothing here is part of the package."""
import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

# `python examples/NN_name.py` from a checkout uses the checkout's package, installed or not.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import tinygrad_yolo as tg  # noqa: E402
from tinygrad_yolo import nn  # noqa: E402
from tinygrad_yolo.data import SYNTHETIC_CLASSES, render_image  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def parse_args(doc, argv=None, add=None):
    """--quick (a reduced size that still makes a meaningful figure, in seconds; what
    tests/test_examples.py runs; --small is the old spelling), --out (figure folder), --seed;
    ``add(parser)`` adds a demo's own flags. The output folder is created."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    parser.add_argument("--quick", "--small", dest="quick", action="store_true",
                        help="a reduced size that runs in seconds and still makes a meaningful figure "
                             "(what tests/test_examples.py runs)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"folder for the figures (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0)
    if add is not None:
        add(parser)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    args.started = time.perf_counter()
    return args


def _plain(value):
    """JSON for what the demos return: NumPy scalars and arrays become numbers and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def finish(args, results, figures, name):
    """Print where the figures went and the runtime; write ``results`` (with the figures, the
    runtime, the flags and a fingerprint of the demo's source) to ``--out/<name>.json``, which
    is what examples/readme_numbers.py turns into the numbers of examples/README.md; return
    ``results``."""
    for f in figures:
        print(f"figure: {f}")
    results["figures"] = [str(f) for f in figures]
    results["seconds"] = time.perf_counter() - args.started
    results["run"] = {"demo": name, "argv": args.argv, "quick": args.quick, "seed": args.seed,
                      "source_sha256": source_fingerprint(name)}
    print(f"runtime: {results['seconds']:.1f} s ({'--quick' if args.quick else 'full size'})")
    (args.out / f"{name}.json").write_text(json.dumps(results, default=_plain, indent=1) + "\n")
    return results


def source_fingerprint(name):
    """sha256 of examples/<name>.py: recorded results say which version of the demo made them."""
    text = (Path(__file__).resolve().parent / f"{name}.py").read_text(encoding="utf-8")
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()  # the same on any checkout


def pyplot():
    """matplotlib.pyplot drawing to files only (works on machines without a display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def shape_images(n, size, rng, max_objects=1, min_size=0.2, max_size=0.7, difficulty=0.5):
    """``n`` synthetic images: (n, 3, size, size) float32 in [0, 1], and per image the boxes
    (M, 4) as normalised xyxy and the class indices (M,) into SYNTHETIC_CLASSES."""
    images = np.empty((n, 3, size, size), dtype=np.float32)
    boxes, labels = [], []
    for i in range(n):
        img, pixel_boxes, classes = render_image(rng, img_size=size, difficulty=difficulty,
                                                 max_objects=max_objects, min_size=min_size, max_size=max_size)
        images[i] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
        boxes.append(np.asarray(pixel_boxes, dtype=np.float64).reshape(-1, 4) / size)
        labels.append(np.asarray(classes, dtype=np.int64))
    return images, boxes, labels


def to_uint8_image(chw):
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, for drawing."""
    return (np.clip(chw, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


class TinyDetector(nn.Module):
    """A YOLO in miniature, built from nn layers: three conv-BN-LeakyReLU-maxpool stages
    (16, 32, 64 channels x width/16; a 56 px image becomes a 7x7 feature map), then a head
    with S*S*(B*5 + C) linear outputs, arranged as (N, S, S, B*5 + C).

    head="fc":   flatten + two fully connected layers, as in YOLOv1: every output sees the
                 whole image (any S).
    head="conv": a 3x3 conv and a 1x1 conv on the feature map, so cell (i, j)'s numbers come
                 from the features around (i, j), as in later YOLOs (needs img_size = 8 * S).
    """

    def __init__(self, S=7, B=2, C=20, img_size=56, head="fc", width=16, hidden=256):
        super().__init__()
        if img_size % 8:
            raise ValueError(f"TinyDetector: img_size must be a multiple of 8, got {img_size}")
        side = img_size // 8
        if head == "conv" and side != S:
            raise ValueError(f"TinyDetector: a conv head on a {img_size} px image gives a {side}x{side} "
                             f"grid, not {S}x{S}; use img_size={8 * S}")
        if head not in ("fc", "conv"):
            raise ValueError(f"TinyDetector: head must be 'fc' or 'conv', got {head!r}")
        self.S, self.B, self.C, self.head_kind = S, B, C, head
        layers, ch = [], 3
        for i in range(3):
            out = width * 2 ** i
            layers += [nn.Conv2d(ch, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.1), nn.MaxPool2d(2)]
            ch = out
        self.features = nn.Sequential(*layers)
        D = B * 5 + C
        if head == "fc":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch * side * side, hidden), nn.LeakyReLU(0.1),
                                      nn.Linear(hidden, S * S * D))
        else:
            self.head = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch),
                                      nn.LeakyReLU(0.1), nn.Conv2d(ch, D, 1))

    def forward(self, x):
        out = self.head(self.features(x))
        if self.head_kind == "conv":
            return out.permute(0, 2, 3, 1)  # (N, D, S, S) -> (N, S, S, D)
        return out.reshape(x.shape[0], self.S, self.S, self.B * 5 + self.C)


CLASS_NAMES = list(SYNTHETIC_CLASSES)
__all__ = ["parse_args", "finish", "pyplot", "shape_images", "to_uint8_image", "TinyDetector", "CLASS_NAMES",
           "tg", "nn"]
