"""`tinygrad-yolo eval`: VOC AP per class and mAP@0.5 (all-point and 11-point) of a checkpoint."""
import json

from ..cli import UserError


def add_arguments(parser):
    parser.add_argument("--weights", required=True, help="a checkpoint written by train (last.npz)")
    parser.add_argument("--data", default=None, help="a Pascal VOC root (default: the synthetic set)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true")


def run(args):
    from ..data import VOCDataset
    from ..data.voc import DatasetError
    from ..train import DEFAULT_DATA, TrainError, evaluate, load_checkpoint
    try:
        model, ckpt = load_checkpoint(args.weights)
        model.to(args.device)
        root = args.data or ckpt["train_config"].get("data") or DEFAULT_DATA
        try:
            ds = VOCDataset(root, args.split, classes=ckpt["classes"])
        except DatasetError as e:
            raise TrainError(str(e)) from None
        metrics = evaluate(model, ds, args.device, args.batch_size)
    except TrainError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps({"classes": ckpt["classes"], **metrics}))
        return 0
    print(f"{'class':<20}{'AP (all-point)':>16}{'AP (11-point)':>16}")
    for name, a, b in zip(ckpt["classes"], metrics["ap"], metrics["ap_11pt"]):
        fmt = lambda v: f"{v:>16.4f}" if v is not None else f"{'(no objects)':>16}"  # noqa: E731
        print(f"{name:<20}{fmt(a)}{fmt(b)}")
    print(f"{'mAP@0.5':<20}{metrics['map50']:>16.4f}{metrics['map50_11pt']:>16.4f}")
    print(f"({metrics['images']} images of {root}, split {args.split})")
    return 0
