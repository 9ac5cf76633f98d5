"""`tinygrad-yolo detect`: run a checkpoint on images; writes annotated copies, prints JSON."""
import json

from ..cli import UserError


def add_arguments(parser):
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--out", default="detections", help="folder for the annotated copies")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold p(c)·conf")
    parser.add_argument("--iou", type=float, default=0.5, help="NMS IoU threshold")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])


def run(args):
    from ..train import TrainError, detect
    try:
        results = detect(args.weights, args.images, args.out, args.device, args.conf, args.iou)
    except TrainError as e:
        raise UserError(str(e)) from None
    print(json.dumps(results, indent=2))
    return 0
