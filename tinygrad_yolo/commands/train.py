"""`tinygrad-yolo train`: train a YOLOv1 detector on a dataset folder (or the synthetic set)."""
import argparse
import json
import os
import sys

SUPPRESS = argparse.SUPPRESS  # options left out are not in args: what the user typed is there


def add_arguments(parser):
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Left out, the input size, the grid and the number of steps are chosen from the data's "
        "own\nstatistics and stated in the start banner. Ctrl-C or SIGTERM stops after the current "
        "step\nand saves; --resume --out RUN continues exactly, with the run's own options.")
    add_data_options(parser.add_argument)
    add_training_options(parser.add_argument)
    add_run_options(parser.add_argument)


def add_data_options(a):
    a("--data", default=SUPPRESS, metavar="PATH",
      help="your dataset: a folder (Pascal VOC root, images with VOC XML, YOLO txt with data.yaml, "
           "COCO JSON) or a data.yaml or COCO .json file (default: the built-in synthetic shapes "
           "set, generated on first use)")
    a("--classes", default=SUPPRESS,
      help="class names: a file with one per line, or 'a,b,c' (default: from the data)")
    a("--train-split", default=SUPPRESS, metavar="NAME",
      help="the split to train on (default: the data's train split)")
    a("--val-split", default=SUPPRESS, metavar="NAME",
      help="the split to validate on (default: val/valid/test if the data has one, else a part of "
           "train)")
    a("--val-fraction", type=float, default=SUPPRESS, metavar="F",
      help="share of train held out for validation when the data has no validation split "
           "(default: 0.2)")
    a("--out", default=SUPPRESS, metavar="DIR",
      help="run folder (default: runs/yolo; a new run takes the next free name, runs/yolo2, ...)")
    a("--exist-ok", action="store_true", default=SUPPRESS,
      help="write into --out even if it holds another run")
    a("--resume", action="store_true",
      help="continue the run in --out (default: the latest under runs/yolo) from its last.npz, "
           "with its own options")


def add_training_options(a):
    a("--steps", type=int, default=SUPPRESS, metavar="N",
      help="optimizer steps (default: from the data: a fixed compute budget, at least 15 epochs)")
    a("--epochs", type=int, default=SUPPRESS, metavar="N",
      help="alternatively, passes over the training split")
    a("--batch-size", type=int, default=SUPPRESS, metavar="N", help="images per step (default: 32)")
    a("--img-size", type=int, default=SUPPRESS, metavar="PX",
      help="square input size, a multiple of 32 (default: 32 x grid)")
    a("--grid", dest="S", type=int, default=SUPPRESS, metavar="S",
      help="the output grid is S x S (default: from how crowded the objects are, at least 7)")
    a("--boxes", dest="B", type=int, default=SUPPRESS, metavar="B",
      help="boxes predicted per cell (default: 2)")
    a("--backbone", default=SUPPRESS, choices=["resnet18", "resnet34", "resnet50"],
      help="(default: resnet18)")
    a("--width", type=float, default=SUPPRESS,
      help="channel width factor of the backbone (default: 0.25)")
    a("--head", default=SUPPRESS, choices=["conv", "fc"],
      help="conv, or the paper's fully connected head (default: conv)")
    a("--lr", type=float, default=SUPPRESS, help="AdamW learning rate (default: 0.01)")
    a("--weight-decay", type=float, default=SUPPRESS, help="AdamW weight decay (default: 5e-4)")
    a("--warmup", type=float, default=SUPPRESS, metavar="F",
      help="warm-up as a fraction of the steps (default: 0.1)")
    a("--lambda-class", type=float, default=SUPPRESS, metavar="L",
      help="weight of the loss's class term, darknet's class_scale (default: 3; the paper's is 1)")
    a("--mosaic", type=float, default=SUPPRESS, metavar="P",
      help="share of training images tiled from four (YOLOv4's mosaic; default: 0, off: not yet "
           "measured to help)")
    a("--window", type=int, default=SUPPRESS, metavar="PX",
      help="train on windows of this size cut from the input image, 0 for whole images (default: "
           "from the data)")
    a("--amp", default=SUPPRESS, choices=["off", "bf16", "fp16"],
      help="mixed precision: conv/matmul operands in bfloat16 or float16, float32 sums; fp16 "
           "scales the loss (GradScaler); on the CPU for checking, not speed (default: off)")
    a("--tf32", action="store_true", default=SUPPRESS,
      help="float32 GEMMs on TF32 tensor cores (--device cuda)")
    a("--ema", dest="ema", action="store_true", default=SUPPRESS,
      help="evaluate and keep a moving average of the weights over the last 5%% of the steps "
           "instead of the weights themselves (default: off: the last weights scored higher on "
           "the synthetic set and dice)")
    a("--sync-bn", dest="sync_bn", action="store_true", default=SUPPRESS,
      help="data-parallel: batch norm with the statistics of the global batch (default: per "
           "process, with the running statistics averaged every step)")
    a("--pretrained", default=SUPPRESS, metavar="PATH",
      help="start the backbone from a torchvision ResNet checkpoint (resnet18-f37072fd.pth and "
           "friends) or .safetensors of the same --backbone and --width; fc is ignored, the head "
           "initialised as without it (default: from scratch)")


def add_run_options(a):
    a("--device", default=SUPPRESS, choices=["cpu", "cuda"], help="(default: cpu)")
    a("--nproc", type=nproc_value, default=None, metavar="N",
      help="train data-parallel on N processes started with mpiexec, each on 1/N of every batch "
           "(on cuda one GPU each; needs the dist extra). auto: on the CPU, one per core while "
           "each keeps 8 images or more of the batch, if the dist extra is installed (default: "
           "1, or $TINYGRAD_YOLO_NPROC)")
    a("--seed", type=int, default=SUPPRESS,
      help="seeds the weights, the data order and the held-out split (default: 0)")
    a("--workers", type=int, default=SUPPRESS, help="data-loading threads (default: 2)")
    a("--max-steps", type=int, default=SUPPRESS, metavar="N",
      help="stop after N steps (smoke tests); the schedule stays that of --steps")
    a("--eval-every", type=int, default=SUPPRESS, metavar="EPOCHS",
      help="validate every this many epochs (default: about 12 times a run)")
    a("--eval-max-images", type=int, default=SUPPRESS, metavar="N",
      help="validate on at most N images (default: all)")
    a("--log-every", type=int, default=SUPPRESS, metavar="STEPS",
      help="steps between metrics.jsonl lines (default: 10)")
    a("--no-progress", action="store_true", help="no progress bars (the per-epoch lines stay)")
    a("--tensorboard", action="store_true", default=SUPPRESS,
      help="also write TensorBoard event files into the run folder: per-step losses and lr, "
           "per-validation mAPs (needs tensorboardX)")


def run(args):
    from ..distributed import leave_together, world
    from ..training import TrainConfig, train
    from ..training.signals import Stopped
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.names()}
    cfg = TrainConfig(**given)
    nproc = processes(args, cfg, given)
    if nproc != 1:
        return start_ranks(args, cfg, given, nproc)
    try:
        metrics = train(cfg, resume=args.resume, given=set(given), progress=not args.no_progress)
    except Stopped as e:
        if not getattr(e, "reported_elsewhere", False):
            print(f"tinygrad-yolo train: {e}", file=sys.stderr)
        leave_together(e, world(), e.code)
        return e.code
    if metrics is None:
        return 0  # a rank other than rank 0: rank 0 reports
    print(json.dumps({"map50": _rounded(metrics["map50"]),
                      "map50_11pt": _rounded(metrics["map50_11pt"]),
                      "map50_95": _rounded(metrics["map50_95"]),
                      "train_seconds": round(metrics["train_seconds"], 1),
                      "steps": metrics["steps"], "out": metrics["run"]}))
    return 0


def nproc_value(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def processes(args, cfg, given):
    """How many processes train: --nproc as given, or as ``auto`` decides (launch.auto_nproc:
    the CPU's cores shared by ranks when the dist extra is installed; else 1, with a hint)."""
    from ..distributed import world
    from ..distributed.launch import auto_nproc
    from ..training import TrainError
    value = args.nproc
    if value is None:
        value = nproc_value(os.environ.get("TINYGRAD_YOLO_NPROC", "1"))
    if value != "auto":
        if value < 1:
            raise TrainError(f"--nproc must be 1 or more, got {value}")
        if value > 1 and world().size > 1:
            raise TrainError(f"--nproc {value}: this process is already one of {world().size} "
                             f"ranks started by mpiexec; leave --nproc out")
        return value
    if world().size > 1:
        return 1  # a rank already: this process trains its share
    batch_size, device = run_options(args, cfg, given)
    nproc, hint = auto_nproc(batch_size, device)
    if hint:
        print(f"note: {hint}")
    return nproc


def run_options(args, cfg, given):
    """(batch size, device) of the run to start, or of the run --resume continues."""
    from ..training.resume import saved_options
    saved = saved_options(cfg.out) if args.resume else {}
    pick = {k: getattr(cfg, k) if k in given else saved.get(k, getattr(cfg, k))
            for k in ("batch_size", "device")}
    return pick["batch_size"], pick["device"]


def start_ranks(args, cfg, given, nproc):
    """This command again as ``nproc`` ranks under mpiexec, once the options are known to be
    good (the data is read by the ranks); returns the job's exit status."""
    from ..distributed.launch import LaunchError, run_ranks
    from ..training import TrainError, check_config
    if not args.resume:
        check_config(cfg)
    if "batch_size" in given and cfg.batch_size % nproc:
        raise TrainError(f"--batch-size {cfg.batch_size} does not split over {nproc} "
                         f"processes: use a multiple of {nproc}")
    try:
        return run_ranks(nproc, args.argv)
    except LaunchError as e:
        raise TrainError(str(e)) from None


def _rounded(value):
    return None if value is None else round(value, 4)
