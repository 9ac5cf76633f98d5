"""`tinygrad-yolo bench`: time a YOLO-ResNet18 training step and the data loader; print a table.

For the comparison with PyTorch (when installed) run benchmarks/bench_step.py from a checkout."""
import json

from . import UserError


def add_arguments(parser):
    from ..bench import CONFIGS
    parser.add_argument("--configs", default="tiny_b32,r18_b8",
                        help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--no-loader", action="store_true", help="skip the data-loader benchmark")
    parser.add_argument("--json", action="store_true")


def run(args):
    from ..bench import CONFIGS, loader_rate, time_steps, training_step
    from ..training import DEFAULT_DATA, TrainConfig
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise UserError(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    if args.steps < 1:
        raise UserError("--steps must be at least 1")
    rows = []
    if not args.json:
        print(f"{'config':<10}{'width':>6}{'img':>5}{'batch':>6}{'s/step':>9}{'img/s':>8}")
    for name in names:
        cfg = CONFIGS[name]
        try:
            median, _ = time_steps(training_step(cfg, args.device), steps=args.steps)
        except RuntimeError as e:  # e.g. device="cuda" without a GPU
            raise UserError(str(e)) from None
        row = {"config": name, **cfg, "s_per_step": round(median, 4),
               "images_per_s": round(cfg["batch"] / median, 2)}
        rows.append(row)
        table_row = (f"{name:<10}{cfg['width']:>6}{cfg['img']:>5}{cfg['batch']:>6}{median:>9.3f}"
                     f"{row['images_per_s']:>8.1f}")
        print(json.dumps(row) if args.json else table_row, flush=True)
    if not args.no_loader:
        from ..data import ensure_synthetic_voc
        d = TrainConfig()
        img = 224  # the input size `train` chooses for the synthetic set
        root = ensure_synthetic_voc(DEFAULT_DATA, **d.synthetic)
        rate = loader_rate(root, img, d.batch_size, d.workers)
        row = {"config": "loader", "img": img, "batch": d.batch_size,
               "images_per_s": round(rate, 1)}
        train_rate = next((r["images_per_s"] for r in rows if r["config"] == "tiny_b32"), None)
        if train_rate:
            row["loader_over_training"] = round(rate / train_rate, 2)
        table_row = f"{'loader':<10}{'':>6}{img:>5}{d.batch_size:>6}{'':>9}{rate:>8.1f}"
        if train_rate:
            table_row += f"   ({row['loader_over_training']}x the default training step's rate)"
        print(json.dumps(row) if args.json else table_row)
    return 0
