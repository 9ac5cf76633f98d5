"""`tinygrad-yolo eval`: per class and over all, VOC's AP@0.5 (all-point and 11-point) and COCO's
AP@0.5 and AP@[.5:.95] of a checkpoint, on the validation split of the run that made it (the same
held-out images) or any split."""


def add_arguments(parser):
    parser.add_argument("--weights", required=True,
                        help="a checkpoint written by train (best.npz or last.npz)")
    parser.add_argument("--data", default=None,
                        help="dataset (default: the one the checkpoint was trained on)")
    parser.add_argument("--split", default=None,
                        help="split to evaluate (default: the run's validation split, a held-out "
                             "part included)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"],
                        help="conv/matmul operands in bfloat16 or float16 (float32 sums)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="data-loading threads")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")


def run(args):
    from . import UserError
    from ..inference import evaluate
    from ..training import TrainConfig, load_checkpoint, open_training_data
    from ..training.config import check_cuda
    from ..training.report import Console
    from ..training.run_folder import dumps
    if args.batch_size < 1 or args.workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    if args.device == "cuda":
        check_cuda()
    model, ckpt = load_checkpoint(args.weights)
    model.to(args.device)
    saved = ckpt.get("data") or {}
    train_config = ckpt.get("train_config") or {}
    data = args.data or saved.get("path")
    cfg = TrainConfig(data=data, classes=ckpt["classes"], train_split=saved.get("train_split"),
                      seed=int(train_config.get("seed", 0)),
                      val_fraction=float(train_config.get("val_fraction", 0.2)))
    if args.split is not None:
        from ..data import open_dataset
        source = open_dataset(cfg.data if cfg.data is not None else _synthetic(train_config),
                              classes=ckpt["classes"])
        if args.split not in source.splits:
            raise UserError(f"--split {args.split!r}: the data has the splits "
                            f"{sorted(source.splits)}")
        dataset, where = source.splits[args.split], f"split {args.split}"
    else:
        # the run's own validation images, found again from what the checkpoint saved
        same = args.data is None or saved.get("path") is None
        prepared = open_training_data(cfg, saved if same else None)
        dataset = prepared.val
        where = f"the run's validation split ({dataset.split})"
    dataset.draft_size = 2 * model.img_size  # decoded as training's validation did
    from ..amp import autocast_mode
    with autocast_mode(args.amp):
        metrics = evaluate(model, dataset, args.device, args.batch_size, workers=args.workers)
    metrics.pop("curves")
    if args.json:
        print(dumps({"classes": ckpt["classes"], **metrics}))
        return 0
    Console(progress=False).table(ckpt["classes"], metrics)
    eleven = metrics["map50_11pt"]
    print(f"mAP@0.5 11-point: {eleven:.4f}" if eleven is not None else "")
    print(f"({metrics['images']} images of {data or 'the synthetic set'}, {where})")
    return 0


def _synthetic(train_config):
    from ..data import ensure_synthetic_voc
    from ..training import DEFAULT_DATA, TrainConfig
    synthetic = train_config.get("synthetic", TrainConfig().synthetic)
    return ensure_synthetic_voc(DEFAULT_DATA, **synthetic)
