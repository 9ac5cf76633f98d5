"""`tinygrad-yolo detect`: run a checkpoint on images, folders or globs; writes annotated copies
and their detections (JSON, optionally YOLO txt) under --out."""
import json


def add_arguments(parser):
    parser.add_argument("images", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--weights", required=True, help="a checkpoint written by train (best.npz or last.npz)")
    parser.add_argument("--out", default="detections",
                        help="output folder: annotated copies at the inputs' relative paths, a .json beside each, "
                             "and detections.json with them all")
    parser.add_argument("--conf", type=float, default=0.25,
                        help="score threshold; a score is p(class) x confidence, both linear outputs clipped at 0, "
                             "so it is usually in [0, 1] but can exceed 1")
    parser.add_argument("--iou", type=float, default=0.5, help="NMS IoU threshold, in (0, 1]")
    parser.add_argument("--save-txt", action="store_true",
                        help="also write YOLO-txt labels (class cx cy w h score) under OUT/labels/")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", action="store_true", help="print every detection as JSON instead of a line per image")


def run(args):
    from ..training.config import check_cuda
    from ..training.detect import check_thresholds, detect
    check_thresholds(args.conf, args.iou)
    if args.device == "cuda":
        check_cuda()
    results = detect(args.weights, args.images, args.out, args.device, args.conf, args.iou, args.save_txt)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in r["detections"][:6])
        more = f", +{len(r['detections']) - 6} more" if len(r["detections"]) > 6 else ""
        print(f"{r['image']}: {len(r['detections'])} object(s){': ' + found + more if found else ''} -> {r['output']}")
    print(f"saved to {args.out}: {len(results)} picture(s), their .json files and detections.json"
          + (", labels/*.txt" if args.save_txt else ""))
    return 0
