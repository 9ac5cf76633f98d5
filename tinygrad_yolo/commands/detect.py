"""`tinygrad-yolo detect`: run a checkpoint, or a file `export` wrote (through ONNX Runtime), on
images, folders or globs; writes annotated copies and their detections (JSON, optionally YOLO
txt) under --out, the same for both."""
import json
import math


def add_arguments(parser):
    a = parser.add_argument
    a("images", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    a("--weights", required=True,
      help="a checkpoint written by train (best.npz or last.npz), or a model.onnx written by "
           "export (run by ONNX Runtime on the CPU: pip install \"tinygrad_yolo[export]\")")
    a("--out", default="detections",
      help="output folder: annotated copies at the inputs' relative paths, a .json beside each, "
           "and detections.json with them all")
    a("--conf", type=float, default=0.25,
      help="score threshold; a score is p(class) x confidence, both linear outputs clipped at 0, "
           "so it is usually in [0, 1] but can exceed 1")
    a("--iou", type=float, default=0.5, help="NMS IoU threshold, in (0, 1]")
    a("--save-txt", action="store_true",
      help="also write YOLO-txt labels (class cx cy w h score) under OUT/labels/")
    a("--device", default="cpu", choices=["cpu", "cuda"])
    a("--amp", default="off", choices=["off", "bf16", "fp16"],
      help="conv/matmul operands in bfloat16 or float16 (float32 sums)")
    a("--json", action="store_true",
      help="print every detection as JSON instead of a line per image")


def check_thresholds(conf, iou):
    from . import UserError
    if not (isinstance(conf, (int, float)) and math.isfinite(conf) and conf >= 0):
        raise UserError(f"--conf must be a finite score >= 0, got {conf!r}")
    if not (isinstance(iou, (int, float)) and math.isfinite(iou) and 0 < iou <= 1):
        raise UserError(f"--iou must lie in (0, 1], got {iou!r}")


def run(args):
    from . import UserError
    from ..inference import collect_images, detect
    from ..training import load_checkpoint
    from ..training.config import check_cuda
    check_thresholds(args.conf, args.iou)
    exported = str(args.weights).lower().endswith(".onnx")
    if exported and args.device == "cuda":
        raise UserError(f"--device cuda: {args.weights} runs on ONNX Runtime's CPU provider here; "
                        f"leave --device out, or detect with the checkpoint it was exported from")
    if exported and args.amp != "off":
        raise UserError(f"--amp {args.amp}: {args.weights} runs in ONNX Runtime's own arithmetic; "
                        f"leave --amp out, or detect with the checkpoint it was exported from")
    if args.device == "cuda":
        check_cuda()
    images = collect_images(args.images)
    if exported:
        from ..export.onnx_runner import OnnxDetector
        model = OnnxDetector(args.weights)
        classes = model.classes
    else:
        model, ckpt = load_checkpoint(args.weights)
        model.to(args.device)
        classes = ckpt["classes"]
    from ..amp import autocast_mode
    with autocast_mode(args.amp):
        results = detect(model, classes, images, args.out, args.device, args.conf, args.iou,
                         args.save_txt)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in r["detections"][:6])
        more = f", +{len(r['detections']) - 6} more" if len(r["detections"]) > 6 else ""
        listed = f": {found}{more}" if found else ""
        print(f"{r['image']}: {len(r['detections'])} object(s){listed} -> {r['output']}")
    print(f"saved to {args.out}: {len(results)} picture(s), their .json files and detections.json"
          + (", labels/*.txt" if args.save_txt else ""))
    return 0
