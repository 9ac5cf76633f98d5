"""Training, evaluation and detection for YOLOv1: the code behind `tinygrad-yolo
train | eval | detect`.

A run folder (``--out``) holds everything a run produces:
    last.npz        checkpoint after every epoch (atomic), and on Ctrl-C
    metrics.jsonl   one JSON line per logged step and per epoch
    metrics.json    the final evaluation (map50, per-class AP, timing)
    loss.png        the loss curve;  val_*.jpg  validation images with boxes
"""
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import optim
from .backend import to_numpy
from .data import DataLoader, EvalTransform, TrainTransform, VOCDataset, ensure_synthetic_voc, open_rgb
from .data.voc import DatasetError
from .detection import YOLOv1Loss, encode_batch, mean_average_precision, postprocess
from .function import no_grad
from .models.yolo import YOLOv1
from .serialization import CheckpointError, load, save
from .tensor import Tensor
from .utils import get_rng, seed as seed_everything

DEFAULT_DATA = Path(os.environ.get("TINYGRAD_YOLO_DATA", Path.home() / ".cache" / "tinygrad_yolo" / "synthetic_voc"))


class TrainError(ValueError):
    """Bad input to train/eval/detect: the CLI prints it as one line."""


@dataclass
class TrainConfig:
    data: Optional[str] = None          # a VOC root; None = the synthetic set, generated on first use
    classes: Optional[str] = None       # a file or comma-separated names (default: from the data)
    train_split: str = "train"
    val_split: str = "val"
    out: str = "runs/yolo"
    epochs: int = 19
    batch_size: int = 32
    img_size: int = 224
    backbone: str = "resnet18"
    width: float = 0.25
    head: str = "conv"
    S: int = 7
    B: int = 2
    lr: float = 1e-2
    weight_decay: float = 5e-4
    warmup_steps: int = 150
    device: str = "cpu"
    seed: int = 0
    workers: int = 2
    max_steps: Optional[int] = None     # stop early (smoke tests)
    log_every: int = 10
    eval_max_images: Optional[int] = None
    synthetic: dict = field(default_factory=lambda: dict(n_train=2000, n_val=300, img_size=224))


# ---- building blocks --------------------------------------------------------------
def build_model(config, num_classes):
    return YOLOv1(backbone=config["backbone"], S=config["S"], B=config["B"], C=num_classes,
                  img_size=config["img_size"], width=config["width"], head=config["head"])


def open_datasets(cfg):
    if cfg.data is None:
        root = ensure_synthetic_voc(DEFAULT_DATA, **cfg.synthetic)
    else:
        root = Path(cfg.data)
        if not root.is_dir():
            raise TrainError(f"--data {root}: no such folder")
        if not (root / "ImageSets" / "Main").is_dir() or not (root / "Annotations").is_dir():
            raise TrainError(f"--data {root}: not a Pascal VOC folder (expected ImageSets/Main/ and Annotations/)")
    try:
        train_ds = VOCDataset(root, cfg.train_split, classes=cfg.classes)
        val_ds = VOCDataset(root, cfg.val_split, classes=train_ds.classes)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    if len(train_ds) == 0:
        raise TrainError(f"{root}: the {cfg.train_split!r} split lists no images")
    return root, train_ds, val_ds


def predict(model, images, device="cpu"):
    """Raw network output (N, S, S, B*5+C) as a NumPy array, in eval mode."""
    was_training = model.training
    model.eval()
    with no_grad():
        out = to_numpy(model(Tensor(images, device=device)).data)
    model.train(was_training)
    return out


def evaluate(model, dataset, device="cpu", batch_size=32, conf_threshold=0.005, iou_threshold=0.5,
             max_images=None, workers=2):
    """VOC mAP@0.5 (both interpolations) of ``model`` on ``dataset``."""
    S, B, C, size = model.S, model.B, model.C, model.img_size
    loader = DataLoader(dataset, batch_size, EvalTransform(size), shuffle=False, num_workers=workers)
    detections, truths, difficult, images_seen = [], [], [], 0
    for batch in loader:
        out = predict(model, batch.images, device)
        detections += postprocess(out, S=S, B=B, C=C, conf_threshold=conf_threshold, iou_threshold=iou_threshold)
        for boxes, labels, dif in zip(batch.boxes, batch.labels, batch.difficult):
            truths.append(np.concatenate([boxes, labels[:, None].astype(np.float32)], axis=1))
            difficult.append(dif)
        images_seen += len(batch.images)
        if max_images and images_seen >= max_images:
            break
    all_point = mean_average_precision(detections, truths, C, 0.5, "all-point", difficult)
    eleven = mean_average_precision(detections, truths, C, 0.5, "11-point", difficult)
    return {"map50": float(all_point["map"]), "map50_11pt": float(eleven["map"]),
            "ap": [None if math.isnan(a) else float(a) for a in all_point["ap"]],
            "ap_11pt": [None if math.isnan(a) else float(a) for a in eleven["ap"]],
            "images": images_seen}


def load_checkpoint(path):
    """(model, checkpoint dict) from a file written by ``train``; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"--weights {path}: no such file")
    try:
        ckpt = load(path)
    except CheckpointError as e:
        raise TrainError(str(e)) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise TrainError(f"{path}: not a tinygrad-yolo detector checkpoint (no model/config entries)")
    model = build_model(ckpt["config"], len(ckpt["classes"]))
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, ValueError) as e:
        raise TrainError(f"{path}: weights don't fit the model they describe: {e}") from None
    return model, ckpt


# ---- training -----------------------------------------------------------------------
class _Log:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, **row):
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()


def _checkpoint(path, model, opt, sched, cfg, classes, epoch, batch, step, dropped):
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
          "config": model.config, "train_config": asdict(cfg), "classes": list(classes),
          "epoch": epoch, "batch": batch, "step": step, "dropped": dropped, "rng": get_rng().bit_generator.state}, path)


def train(cfg, progress=True):
    """Train a YOLOv1 detector as ``cfg`` says; returns the final metrics dict."""
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    root, train_ds, val_ds = open_datasets(cfg)
    classes = train_ds.classes
    seed_everything(cfg.seed)
    model = build_model(asdict(cfg), len(classes))
    model.to(cfg.device)
    loader = DataLoader(train_ds, cfg.batch_size, TrainTransform(cfg.img_size), shuffle=True, drop_last=True,
                        num_workers=cfg.workers, seed=cfg.seed)
    steps_per_epoch = max(1, len(loader))
    total_steps = cfg.epochs * steps_per_epoch  # the schedule's length; --max-steps only stops early
    stop_at = total_steps if cfg.max_steps is None else min(cfg.max_steps, total_steps)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = optim.LinearWarmup(opt, warmup_steps=min(cfg.warmup_steps, total_steps // 2), start_factor=0.1,
                               after=optim.CosineAnnealingLR(opt, T_max=max(1, total_steps)))
    criterion = YOLOv1Loss(S=cfg.S, B=cfg.B, C=len(classes))

    ckpt_path = out / "last.npz"
    epoch, start_batch, step, dropped = 0, 0, 0, 0
    if getattr(cfg, "resume", False):
        model_ckpt, ckpt = load_checkpoint(ckpt_path)
        if ckpt["config"] != model.config:
            raise TrainError(f"{ckpt_path}: the checkpoint's model {ckpt['config']} differs from this run's "
                             f"{model.config}; use the same options or another --out")
        model.load_state_dict(ckpt["model"])
        try:
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
        except (KeyError, ValueError) as e:
            raise TrainError(f"{ckpt_path}: can't resume with these options ({e}); resume with the "
                             f"options of the original run (--epochs {ckpt['train_config']['epochs']}, "
                             f"--batch-size {ckpt['train_config']['batch_size']}, --lr {ckpt['train_config']['lr']})") from None
        get_rng().bit_generator.state = ckpt["rng"]  # dropout masks continue exactly
        epoch, start_batch, step, dropped = ckpt["epoch"], ckpt["batch"], ckpt["step"], ckpt["dropped"]
        model.to(cfg.device)
    log = _Log(out / "metrics.jsonl")
    log.write(event="start", step=step, epoch=epoch, classes=classes, train_images=len(train_ds),
              val_images=len(val_ds), data=str(root), config=asdict(cfg))

    started = time.perf_counter()
    model.train()
    try:
        while epoch < cfg.epochs and step < stop_at:
            loader.set_epoch(epoch)
            bar = tqdm(total=steps_per_epoch, initial=start_batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not progress, leave=False, dynamic_ncols=True)
            seen, t0 = 0, time.perf_counter()
            for b, batch in enumerate(loader.iterate(start_batch=start_batch), start=start_batch):
                keep = [~d for d in batch.difficult]  # difficult boxes are for evaluation only
                targets, lost = encode_batch([bx[k] for bx, k in zip(batch.boxes, keep)],
                                             [lb[k] for lb, k in zip(batch.labels, keep)], cfg.S, len(classes))
                dropped += lost
                pred = model(Tensor(batch.images, device=cfg.device))
                loss, parts = criterion(pred, targets)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                seen += len(batch.images)
                rate = seen / (time.perf_counter() - t0)
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainError(f"the loss became {value} at step {step}; try a lower --lr")
                bar.set_postfix(loss=f"{value:.3f}", **{k: f"{v:.2f}" for k, v in parts.items()},
                                img_s=f"{rate:.1f}")
                bar.update(1)
                if step % cfg.log_every == 0 or step == 1:
                    log.write(event="step", step=step, epoch=epoch, loss=value, **parts,
                              lr=opt.param_groups[0]["lr"], images_per_s=rate, dropped_objects=dropped)
                start_batch = b + 1
                if step >= stop_at:
                    break
            bar.close()
            if start_batch >= steps_per_epoch:
                epoch, start_batch = epoch + 1, 0
            _checkpoint(ckpt_path, model, opt, sched, cfg, classes, epoch, start_batch, step, dropped)
            log.write(event="epoch", step=step, epoch=epoch, seconds=time.perf_counter() - started)
    except KeyboardInterrupt:
        _checkpoint(ckpt_path, model, opt, sched, cfg, classes, epoch, start_batch, step, dropped)
        log.write(event="interrupted", step=step, epoch=epoch)
        print(f"\ninterrupted: saved {ckpt_path} (epoch {epoch}, batch {start_batch}); "
              f"continue with --resume --out {out}")
        raise
    train_seconds = time.perf_counter() - started

    metrics = evaluate(model, val_ds, cfg.device, cfg.batch_size, max_images=cfg.eval_max_images,
                       workers=cfg.workers)
    metrics.update(classes=classes, steps=step, epochs=epoch, train_seconds=train_seconds,
                   dropped_objects=dropped, config=asdict(cfg))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.write(event="eval", step=step, map50=metrics["map50"], map50_11pt=metrics["map50_11pt"])
    _write_figures(out, model, val_ds, cfg.device)
    return metrics


def _write_figures(out, model, val_ds, device, n_images=4):
    from .viz import draw_detections, plot_curves

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if r.get("event") == "step"]
    curves = {"total": ([r["step"] for r in steps], [r["loss"] for r in steps])}
    for part in ("coord", "size", "obj", "noobj", "class"):
        curves[part] = ([r["step"] for r in steps], [r[part] for r in steps])
    plot_curves(curves, out / "loss.png", title="YOLOv1 training loss", logy=True)

    transform = EvalTransform(model.img_size)
    for i in range(min(n_images, len(val_ds))):
        sample = val_ds[i]
        x = transform(sample.image, sample.boxes, sample.labels).image[None]
        det = postprocess(predict(model, x, device), S=model.S, B=model.B, C=model.C,
                          conf_threshold=0.2, iou_threshold=0.5)[0]
        truth = np.concatenate([sample.boxes, sample.labels[:, None]], axis=1)
        draw_detections(sample.image, det, val_ds.classes, truth).save(out / f"val_{i}.jpg", quality=90)


def detect(weights, images, out_dir, device="cpu", conf_threshold=0.25, iou_threshold=0.5):
    """Detections for image files: writes annotated copies, returns JSON-able results."""
    from .viz import draw_detections

    model, ckpt = load_checkpoint(weights)
    model.to(device)
    classes = ckpt["classes"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    transform, results = EvalTransform(model.img_size), []
    for path in images:
        path = Path(path)
        if not path.is_file():
            raise TrainError(f"{path}: no such image")
        try:
            image = open_rgb(path)
            image.load()
        except Exception as e:
            raise TrainError(f"{path}: can't read this image ({type(e).__name__}: {e})") from None
        x = transform(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)).image[None]
        det = postprocess(predict(model, x, device), S=model.S, B=model.B, C=model.C,
                          conf_threshold=conf_threshold, iou_threshold=iou_threshold)[0]
        W, H = image.size
        target = out_dir / f"{path.stem}_detections.jpg"
        draw_detections(image, det, classes).save(target, quality=92)
        results.append({"image": str(path), "output": str(target), "detections": [
            {"class": classes[int(c)], "score": round(float(s), 4),
             "box": [round(float(x1 * W), 1), round(float(y1 * H), 1), round(float(x2 * W), 1), round(float(y2 * H), 1)]}
            for x1, y1, x2, y2, s, c in det]})
    return results
