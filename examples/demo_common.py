"""Plumbing shared by the demos: command-line flags, the output folder, synthetic images,
and the small detector of demos 6 and 8. Nothing here is part of the package."""
import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

# `python examples/NN_name.py` from a checkout uses the checkout's package, installed or not.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# tinygrad_yolo before NumPy: importing it sets OPENBLAS_THREAD_TIMEOUT, which OpenBLAS reads only
# when NumPy loads it (idle BLAS threads otherwise spin and slow everything between GEMMs, see
# the README). The demos import this module first for that reason.
import tinygrad_yolo as tg  # noqa: E402
from tinygrad_yolo import nn  # noqa: E402
from tinygrad_yolo.data import SYNTHETIC_CLASSES, render_image  # noqa: E402

import numpy as np  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def parse_args(doc, argv=None, add=None):
    """--quick (a reduced size that still makes a meaningful figure, in seconds to a minute or
    two; --small is another spelling), --smoke (smaller still: every line runs, for
    tests/test_examples.py; implies --quick where a demo has no smoke size of its own),
    --out (figure folder), --seed; ``add(parser)`` adds a demo's own flags. The output folder
    is created."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0], epilog=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", "--small", dest="quick", action="store_true",
                        help="a reduced size that runs in seconds to a minute or two and still "
                             "makes a meaningful figure")
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest size that runs every line (what tests/test_examples.py "
                             "runs); its figures are too rough to read: use --quick")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help=f"folder for the figures (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0)
    if add is not None:
        add(parser)
    args = parser.parse_args(argv)
    args.quick = args.quick or args.smoke
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    args.started = time.perf_counter(), time.process_time()
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
    results["figures"] = [str(f) for f in figures]  # (readme_numbers.py keeps only the names)
    # wall time, and CPU time (all threads): on a shared machine the second is the steadier one
    results["seconds"] = time.perf_counter() - args.started[0]
    results["cpu_seconds"] = time.process_time() - args.started[1]
    results["run"] = {"demo": name, "argv": args.argv, "quick": args.quick, "smoke": args.smoke,
                      "seed": args.seed, "source_sha256": source_fingerprint(name),
                      "date": time.strftime("%Y-%m-%d"), "numpy": np.__version__,
                      "platform": platform.platform(), "cpus": os.cpu_count()}
    size = "--smoke" if args.smoke else "--quick" if args.quick else "full size"
    print(f"runtime: {results['seconds']:.1f} s ({size})")
    (args.out / f"{name}.json").write_text(json.dumps(results, default=_plain, indent=1) + "\n")
    return results


def source_fingerprint(name):
    """sha256 of examples/<name>.py: recorded results say which version of the demo made them."""
    text = (Path(__file__).resolve().parent / f"{name}.py").read_text(encoding="utf-8")
    # line ends normalised: the same on any checkout
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()


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
                                                 max_objects=max_objects, min_size=min_size,
                                                 max_size=max_size)
        images[i] = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
        boxes.append(np.asarray(pixel_boxes, dtype=np.float64).reshape(-1, 4) / size)
        labels.append(np.asarray(classes, dtype=np.int64))
    return images, boxes, labels


def crowded_image(seed, size, S=7, C=20, objects=3):
    """One image (1, 3, size, size) with at least ``objects`` objects whose centres fall in
    different cells of an S x S grid (so the target keeps them all), its boxes and labels."""
    from tinygrad_yolo.detection import encode_batch

    rng = np.random.default_rng(seed + 1000)
    while True:
        image, boxes, labels = shape_images(1, size, rng, max_objects=4, min_size=0.18,
                                            max_size=0.45)
        if len(boxes[0]) >= objects and encode_batch(boxes, labels, S=S, C=C)[1] == 0:
            return image, boxes[0], labels[0]


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
            raise ValueError(f"TinyDetector: a conv head on a {img_size} px image gives a "
                             f"{side}x{side} grid, not {S}x{S}; use img_size={8 * S}")
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
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch * side * side, hidden),
                                      nn.LeakyReLU(0.1), nn.Linear(hidden, S * S * D))
        else:
            self.head = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(ch), nn.LeakyReLU(0.1), nn.Conv2d(ch, D, 1))

    def forward(self, x):
        out = self.head(self.features(x))
        if self.head_kind == "conv":
            return out.permute(0, 2, 3, 1)  # (N, D, S, S) -> (N, S, S, D)
        return out.reshape(x.shape[0], self.S, self.S, self.B * 5 + self.C)


PREDICTOR_COLORS = ("#00e5ff", "#ff3df5", "#ffd400", "#7CFC00")  # predictor 1, 2, ... of a cell


def cell_boxes(output, S, B):
    """(S, S, B*5 + C) raw output -> (S, S, B, 4) image-frame xyxy and (S, S, B) confidences:
    x, y are the centre within cell (i, j), the net predicts sqrt(w), sqrt(h)."""
    preds = np.asarray(output)[..., :B * 5].reshape(S, S, B, 5)
    rows, cols = np.arange(S).reshape(S, 1, 1), np.arange(S).reshape(1, S, 1)
    cx, cy = (cols + preds[..., 0]) / S, (rows + preds[..., 1]) / S
    w, h = preds[..., 2] ** 2, preds[..., 3] ** 2
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1), preds[..., 4]


def in_target(boxes, target):
    """For each true box (M, 4) xyxy: is it the object its cell answers for in ``target``
    (S, S, 5 + C)? (One object per cell: encode_targets keeps one and drops the others.)"""
    S = target.shape[0]
    kept = []
    for i, j in object_cells(target):
        x, y, w, h = target[i, j, :4]
        cx, cy = (j + x) / S, (i + y) / S
        kept.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return [bool(kept) and bool(np.abs(np.asarray(kept) - b).max(axis=1).min() < 1e-5)
            for b in np.asarray(boxes)]


def draw_grid(ax, image, S, truth_boxes=(), output=None, B=2, cells=(), responsible=None,
              labels=True, kept=None):
    """``image`` (H, W, 3) uint8 with the S x S grid, the true boxes (white; dotted where
    ``kept`` says the target dropped them) and their centres (white dots); for each (i, j) in
    ``cells`` both predictors of that cell from ``output`` (S, S, B*5 + C): colour = predictor
    number, solid and thick = ``responsible[i, j, b]``, dashed = not responsible (or unknown),
    each labelled with its confidence."""
    from matplotlib.patches import Rectangle

    H, W = image.shape[:2]
    ax.imshow(image, extent=(0, W, H, 0), interpolation="nearest")
    for k in range(1, S):
        ax.axhline(k * H / S, color="white", lw=0.6, alpha=0.6)
        ax.axvline(k * W / S, color="white", lw=0.6, alpha=0.6)
    for n, (x1, y1, x2, y2) in enumerate(truth_boxes):
        dropped = kept is not None and not kept[n]
        ax.add_patch(Rectangle((x1 * W, y1 * H), (x2 - x1) * W, (y2 - y1) * H, fill=False,
                               ec="white", lw=1.0 if dropped else 1.4, ls=":" if dropped else "-"))
        ax.plot((x1 + x2) / 2 * W, (y1 + y2) / 2 * H, "o", ms=5, mfc="white", mec="black", mew=0.8)
    if output is not None:
        boxes, conf = cell_boxes(output, S, B)
        for i, j in cells:
            ax.add_patch(Rectangle((j * W / S, i * H / S), W / S, H / S, fill=False, ec="yellow",
                                   lw=1.5))
            for b in range(B):
                x1, y1, x2, y2 = boxes[i, j, b] * np.array([W, H, W, H])
                resp = responsible is not None and bool(responsible[i, j, b])
                color = PREDICTOR_COLORS[b % len(PREDICTOR_COLORS)]
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color,
                                       lw=2.2 if resp else 1.2, ls="-" if resp else "--"))
                if labels:
                    ax.text(np.clip(x1 + 26 * b, 0, W - 24) + 1, np.clip(y1, 10, H) - 1.5,
                            f"{conf[i, j, b]:.2f}", color=color, fontsize=7, va="bottom",
                            clip_on=True, bbox={"fc": "black", "alpha": 0.5, "pad": 0.5, "lw": 0})
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def object_cells(target):
    """[(i, j)] of the cells of one (S, S, 5 + C) target that hold an object."""
    return [tuple(int(v) for v in ij) for ij in np.argwhere(np.asarray(target)[..., 4] > 0)]


CLASS_NAMES = list(SYNTHETIC_CLASSES)
__all__ = ["parse_args", "finish", "pyplot", "shape_images", "to_uint8_image", "TinyDetector",
           "CLASS_NAMES", "cell_boxes", "crowded_image", "draw_grid", "in_target", "object_cells",
           "PREDICTOR_COLORS", "tg", "nn"]
