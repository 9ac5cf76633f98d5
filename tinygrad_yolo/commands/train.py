"""`tinygrad-yolo train`: train a YOLOv1 detector (default: the synthetic shapes set, on CPU)."""
import json
from dataclasses import fields

from ..cli import UserError


def add_arguments(parser):
    from ..train import TrainConfig
    d = TrainConfig()
    parser.add_argument("--data", default=None, help="a Pascal VOC root (default: the built-in synthetic set)")
    parser.add_argument("--classes", default=None, help="class names: a file or comma-separated list")
    parser.add_argument("--train-split", default=d.train_split)
    parser.add_argument("--val-split", default=d.val_split)
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--img-size", type=int, default=d.img_size)
    parser.add_argument("--backbone", default=d.backbone, choices=["resnet18", "resnet34", "resnet50"])
    parser.add_argument("--width", type=float, default=d.width, help="channel width factor of the backbone")
    parser.add_argument("--head", default=d.head, choices=["conv", "fc"])
    parser.add_argument("--grid", dest="S", type=int, default=d.S, help="S: the output grid is S x S")
    parser.add_argument("--boxes", dest="B", type=int, default=d.B, help="B: boxes predicted per cell")
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--device", default=d.device, choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--workers", type=int, default=d.workers, help="data-loading threads")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--eval-max-images", type=int, default=None)
    parser.add_argument("--out", default=d.out, help="run folder: checkpoint, logs, metrics, figures")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.npz")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    from ..train import TrainConfig, TrainError, train
    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    cfg.resume = args.resume
    for name in ("epochs", "batch_size", "img_size"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    try:
        metrics = train(cfg, progress=not args.no_progress)
    except TrainError as e:
        raise UserError(str(e)) from None
    print(json.dumps({"map50": round(metrics["map50"], 4), "map50_11pt": round(metrics["map50_11pt"], 4),
                      "train_seconds": round(metrics["train_seconds"], 1), "steps": metrics["steps"],
                      "out": cfg.out}))
    return 0
