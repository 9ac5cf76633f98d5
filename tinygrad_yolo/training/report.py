"""What a run shows its user: the start banner, a line per epoch, the final per-class table,
and the files in the run folder (results.csv, results.png, pr_curve.png, confusion_matrix.png,
val_*.jpg), after ultralytics' and darknet's reports.
"""
import csv
import math
import sys

import numpy as np

from .run_folder import read_metrics


def _fmt_time(seconds):
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _num(v, digits=3):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


class Console:
    """Lines for the terminal; through tqdm.write so a progress bar below them stays intact."""

    def __init__(self, stream=None, progress=True):
        self.stream = stream or sys.stdout
        self.progress = progress

    def line(self, text=""):
        from tqdm import tqdm
        tqdm.write(text, file=self.stream)

    def bar(self, total, desc, initial=0, unit="step"):
        """A progress bar on stderr, only when stderr is a terminal: written to a file (``train
        > log.txt 2>&1``, a scheduler's log) its carriage-return frames would fill the file,
        so there the per-epoch lines stand alone, as in ultralytics' logs."""
        from tqdm import tqdm
        shown = self.progress and _is_terminal(sys.stderr)
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False,
                    dynamic_ncols=True, disable=not shown, file=sys.stderr)

    def banner(self, rows):
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            for i, text in enumerate(value if isinstance(value, list) else [value]):
                self.line(f"{key if i == 0 else '':<{width}}  {text}")

    def epoch(self, epoch, epochs, step, steps, parts, rate, eta, val=None, best=False):
        loss = sum(parts.values())
        detail = " ".join(f"{k} {v:.2f}" for k, v in parts.items())
        text = (f"epoch {epoch:>{len(str(epochs))}}/{epochs}  "
                f"step {step:>{len(str(steps))}}/{steps}  "
                f"loss {loss:.3f} ({detail})  {rate:.0f} img/s  ETA {_fmt_time(eta)}")
        if val is not None:
            text += f"  val mAP@0.5 {_num(val)}" + (" (best)" if best else "")
        self.line(text)

    def table(self, classes, metrics):
        """The per-class table of a final evaluation: VOC's AP@0.5 (all-point), then COCO's
        AP@0.5 (101 recalls) and AP@[.5:.95]."""
        w = max([len(c) for c in classes] + [8])
        self.line(f"{'class':<{w}}  {'images':>7}  {'objects':>7}  {'P':>6}  {'R':>6}  "
                  f"{'AP@0.5':>7}  {'COCO@0.5':>8}  {'COCO@.5:.95':>11}")
        images = metrics.get("images_with", [None] * len(classes))
        total_objects = sum(metrics["instances"])
        self.line(f"{'all':<{w}}  {metrics['images']:>7}  {total_objects:>7}  "
                  f"{_num(_mean(metrics['precision'])):>6}  {_num(_mean(metrics['recall'])):>6}  "
                  f"{_num(metrics['map50']):>7}  {_num(metrics['map50_coco']):>8}  "
                  f"{_num(metrics['map50_95']):>11}")
        for c, name in enumerate(classes):
            shown = images[c] if images[c] is not None else "-"
            self.line(f"{name:<{w}}  {shown:>7}  {metrics['instances'][c]:>7}  "
                      f"{_num(metrics['precision'][c]):>6}  {_num(metrics['recall'][c]):>6}  "
                      f"{_num(metrics['ap'][c]):>7}  {_num(metrics['ap50_coco'][c]):>8}  "
                      f"{_num(metrics['ap50_95'][c]):>11}")


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False


def start_banner(data, plan, parameters, run, resumed_at=None, removed=(), pretrained=None):
    """The start banner's rows: the data, the plan's choices and why, the model, the run folder.
    ``pretrained``: the layers a new run took from --pretrained's file."""
    cfg, src = plan.config, data.source
    info = data.info
    train = (f"train {len(data.train):,} images / {data.train.num_boxes():,} boxes "
             f"({info['train_split']})")
    if info.get("held_out"):
        held = info["held_out"]
        val = (f"val {len(data.val):,} images / {data.val.num_boxes():,} boxes: "
               f"{held['fraction']:.0%} of {info['train_split']} held out (seed {held['seed']}; "
               f"the ids are in the checkpoint and split.json)")
    else:
        val = f"val {len(data.val):,} images / {data.val.num_boxes():,} boxes ({info['val_split']})"
    names = ", ".join(src.classes[:24]) + (", ..." if len(src.classes) > 24 else "")
    rows = [("data", [f"{src.layout} at {src.path}", train, val] + src.notes),
            ("classes", f"{len(src.classes)}: {names}")] + plan.banner_rows()
    rows += [("model", f"YOLOv1 on {cfg.backbone} (width {cfg.width:g}, {cfg.head} head): "
                       f"{parameters:,} parameters"),
             *pretrained_rows(cfg, pretrained, resumed_at),
             ("device", cfg.device),
             ("run", f"{run}" + ("" if resumed_at is None else f" (resumed at step {resumed_at})"))]
    if data.warnings:
        rows.append(("warnings", [f"{len(data.warnings)} about the data (in "
                                  f"{run / 'data_warnings.txt'}), e.g.", *data.warnings[:3]]))
    if removed:
        rows.append(("cleaned", f"{len(removed)} temporary file(s) of an interrupted save"))
    return rows


def pretrained_rows(cfg, layers, resumed_at):
    """The banner's "pretrained" row: which layers came from the file, and what didn't."""
    if cfg.pretrained is None:
        return []
    if resumed_at is not None:
        return [("pretrained", f"{cfg.pretrained} (loaded when the run started; the weights "
                               f"now come from last.npz)")]
    return [("pretrained", [f"{', '.join(layers)} from {cfg.pretrained}",
                            "fc ignored; the head initialised as without it"])]


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


# ---- files -----------------------------------------------------------------------------------
PARTS = ("coord", "size", "obj", "noobj", "class")


def epoch_rows(metrics_path):
    """One row per epoch of a run's metrics.jsonl: mean loss parts, lr, val mAPs (VOC's
    mAP@0.5; COCO's at 0.5 and [.5:.95]), time."""
    rows = read_metrics(metrics_path)
    out, current = [], {}
    for r in rows:
        if r.get("event") == "step":
            current.setdefault("steps", []).append(r)
        elif r.get("event") == "epoch":
            steps = current.get("steps", [])
            row = {"epoch": r["epoch"], "step": r["step"],
                   "seconds": round(r.get("seconds", 0.0), 1)}
            for part in PARTS:
                vals = [s[part] for s in steps if s.get(part) is not None]
                row[part] = round(float(np.mean(vals)), 5) if vals else None
            whole = all(row[p] is not None for p in PARTS)
            row["loss"] = round(sum(row[p] for p in PARTS), 5) if whole else None
            row["lr"] = steps[-1].get("lr") if steps else None
            rate = steps[-1].get("images_per_s") if steps else None
            row["images_per_s"] = round(rate, 1) if rate else None
            row["val_map50"] = r.get("map50")
            row["val_map50_coco"], row["val_map50_95"] = r.get("map50_coco"), r.get("map50_95")
            out.append(row)
            current = {}
    return out


def write_results_csv(path, rows):
    fields = ["epoch", "step", "loss", *PARTS, "lr", "val_map50", "val_map50_coco", "val_map50_95",
              "images_per_s", "seconds"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_results(path, metrics_path, title):
    """results.png: each loss part, the total, the learning rate and the val mAP against steps."""
    plt = _pyplot()
    rows = read_metrics(metrics_path)
    steps = [r for r in rows if r.get("event") == "step"]
    evals = [r for r in rows if r.get("event") == "epoch" and r.get("map50") is not None]
    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    series = [("loss (total)", "loss"), *[(f"{p} loss", p) for p in PARTS], ("learning rate", "lr")]
    for ax, (label, key) in zip(axes.flat, series):
        xs = [r["step"] for r in steps if r.get(key) is not None]
        ys = [r[key] for r in steps if r.get(key) is not None]
        ax.plot(xs, ys, lw=1, color="tab:blue")
        if len(ys) > 8 and key != "lr":  # a running mean shows the trend through the noise
            k = max(3, len(ys) // 15)
            smooth = np.convolve(ys, np.ones(k) / k, mode="valid")
            ax.plot(xs[k - 1:], smooth, lw=2, color="tab:orange", label="running mean")
        ax.set_title(label)
        ax.set_xlabel("step")
        if key != "lr" and ys and min(ys) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    ax = axes.flat[-1]
    ax.plot([r["step"] for r in evals], [r["map50"] for r in evals], "o-", color="tab:green",
            label="mAP@0.5 (VOC)")
    coco = [r for r in evals if r.get("map50_95") is not None]
    if coco:
        ax.plot([r["step"] for r in coco], [r["map50_95"] for r in coco], "s-",
                color="tab:purple", label="mAP@[.5:.95] (COCO)")
        ax.legend(loc="best", fontsize=8)
    ax.set_title("val mAP")
    ax.set_xlabel("step")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pr_curves(path, curves, classes, ap, title):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    grid = np.linspace(0, 1, 101)
    interpolated = []
    for c, name in enumerate(classes):
        r, p = curves["recall"][c], curves["precision"][c]
        if ap[c] is None:
            continue
        # the monotone envelope VOC's AP integrates, drawn as a step curve
        env = np.maximum.accumulate(p[::-1])[::-1] if len(p) else p
        ax.step(np.concatenate([[0], r]), np.concatenate([[env[0] if len(env) else 0], env]),
                where="post", lw=1, alpha=0.8, label=f"{name} {ap[c]:.3f}")
        interpolated.append(np.array([env[r >= t].max() if np.any(r >= t) else 0.0 for t in grid]))
    if interpolated:
        mean = np.mean(interpolated, axis=0)
        valid = [a for a in ap if a is not None]
        ax.plot(grid, mean, color="black", lw=3, label=f"all classes {np.mean(valid):.3f} mAP@0.5")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8 if len(classes) <= 20 else 6,
              ncol=1 if len(classes) <= 12 else 2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(path, matrix, classes, title):
    """Rows: true class; columns: predicted; the last row/column is background. Each cell is
    the share of its row (what became of the objects of that class), its count written in it."""
    plt = _pyplot()
    names = list(classes) + ["background"]
    n = len(names)
    counts = np.asarray(matrix, dtype=np.float64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(18, 3 + 0.55 * n)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fs = 9 if n <= 12 else 6 if n <= 30 else 4
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=fs)
    ax.set_yticklabels(names, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=fs,
                            color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's objects")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

