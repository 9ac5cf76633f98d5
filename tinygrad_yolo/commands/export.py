"""`tinygrad-yolo export`: a checkpoint written as ONNX, beside the weights unless --out says
otherwise; the file is checked by onnx.checker (full check) before it is written. With
--format torchvision, its backbone alone as backbone.safetensors in torchvision's names, the
file `train --pretrained` starts from."""
import math
from pathlib import Path


def add_arguments(parser):
    parser.add_argument("--weights", required=True, help="a checkpoint written by train (best.npz)")
    parser.add_argument("--format", default="onnx", choices=["onnx", "torchvision"],
                        help="onnx: the detector; torchvision: its ResNet backbone as "
                             ".safetensors in torchvision's names (for train --pretrained)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 or newer")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="any batch size (default: batch 1)")
    parser.add_argument("--with-postprocess", action="store_true",
                        help="append the decode and per-class NonMaxSuppression: the file maps "
                             "images to boxes, scores, classes and image index")
    parser.add_argument("--conf", type=float, default=0.25,
                        help="with --with-postprocess: the default score threshold (an input)")
    parser.add_argument("--iou", type=float, default=0.5,
                        help="with --with-postprocess: the default NMS IoU threshold (an input)")
    parser.add_argument("--out", default=None, help="output file (default: model.onnx, or "
                                                    "backbone.safetensors, beside the weights)")


def run(args):
    from . import UserError
    from ..export.onnx import export_onnx
    from ..training.checkpoint import load_checkpoint
    if not (math.isfinite(args.conf) and args.conf >= 0 and 0 < args.iou <= 1):
        raise UserError(f"--conf must be a finite score >= 0 and --iou lie in (0, 1], got "
                        f"{args.conf} and {args.iou}")
    model, ckpt = load_checkpoint(args.weights)
    if args.format == "torchvision":
        return export_backbone(model, args)
    out = Path(args.out) if args.out else Path(args.weights).with_name("model.onnx")
    export_onnx(model, out, ckpt["classes"], opset=args.opset, dynamic_batch=args.dynamic_batch,
                with_postprocess=args.with_postprocess, conf_threshold=args.conf,
                iou_threshold=args.iou)
    what = "boxes, scores, classes" if args.with_postprocess else "the raw grid"
    print(f"wrote {out}: ONNX opset {args.opset}, input images (N, 3, {model.img_size}, "
          f"{model.img_size}) RGB / 255, output {what}; run it with "
          f"`tinygrad-yolo detect --weights {out} IMAGES`")
    return 0


def export_backbone(model, args):
    from ..models.pretrained import save_backbone
    out = Path(args.out) if args.out else Path(args.weights).with_name("backbone.safetensors")
    save_backbone(model, out)
    cfg = model.config
    print(f"wrote {out}: the {cfg['backbone']} backbone (width {cfg['width']:g}) in torchvision's "
          f"names, without fc; start a run from it with `tinygrad-yolo train --pretrained {out} "
          f"--backbone {cfg['backbone']} --width {cfg['width']:g}`")
    return 0
