"""Every option of a training run, and the checks that turn bad ones into one clear line before
any data is read.

``None`` means "choose from the data": the input size, the grid and the number of steps are
set by ``recipe.plan`` from the training split's own statistics, and the chosen values are
stored in the checkpoint, so a resumed run uses exactly them.
"""
import math
from dataclasses import dataclass, field, fields
from typing import Optional

from ..amp import AMP_MODES
from .errors import TrainError
from .tensorboard import summary_writer_class

BACKBONES = ("resnet18", "resnet34", "resnet50")
HEADS = ("conv", "fc")
DEVICES = ("cpu", "cuda")


@dataclass
class TrainConfig:
    data: Optional[str] = None           # a dataset folder/file; None = the synthetic set
    classes: Optional[str] = None        # a file or comma-separated names (default: from the data)
    train_split: Optional[str] = None    # default: the data's train split
    val_split: Optional[str] = None      # default: its val/valid/test split, else a part of train
    val_fraction: float = 0.2            # held out of train when the data has no validation split
    out: str = "runs/yolo"               # run folder; a new run takes the next free name (yolo2)
    exist_ok: bool = False               # write into --out even if it holds another run
    steps: Optional[int] = None          # optimizer steps; None = from the data (recipe.plan)
    epochs: Optional[int] = None         # alternatively, passes over the training split
    batch_size: int = 32
    img_size: Optional[int] = None       # None = from the objects' sizes
    S: Optional[int] = None              # the grid; None = from how crowded the objects are
    window: Optional[int] = None         # training windows' size (0: whole images; None: choose)
    B: int = 2
    backbone: str = "resnet18"
    width: float = 0.25
    head: str = "conv"
    lr: float = 1e-2
    weight_decay: float = 5e-4
    warmup: float = 0.1                  # warm-up, as a fraction of the steps
    lambda_class: float = 3.0            # the class term's weight (darknet's class_scale)
    mosaic: float = 0.0                  # share of training images made of four (YOLOv4's mosaic)
    ema: bool = False                    # evaluate and keep an average of the weights (ema.py)
    sync_bn: bool = False                # data-parallel: batch norm over the global batch
    pretrained: Optional[str] = None     # torchvision ResNet weights (.pth, .safetensors) to start
    tensorboard: bool = False            # also write TensorBoard event files (tensorboard.py)
    device: str = "cpu"
    amp: str = "off"                     # mixed precision: off, bf16, fp16 (+ loss scaling)
    tf32: bool = False                   # float32 GEMMs on TF32 tensor cores (--device cuda)
    seed: int = 0
    workers: int = 2
    max_steps: Optional[int] = None      # stop early (smoke tests); the schedule stays `steps`'s
    log_every: int = 10
    eval_every: Optional[int] = None     # epochs between validations; None = about 12 in a run
    eval_max_images: Optional[int] = None
    synthetic: dict = field(default_factory=lambda: dict(n_train=2000, n_val=300, img_size=224))

    @classmethod
    def names(cls):
        return [f.name for f in fields(cls)]


# Options that only change how a run is carried out, never its result: a resumed run may differ.
RUNTIME_OPTIONS = ("device", "workers", "out", "exist_ok", "log_every", "eval_max_images",
                   "tensorboard")


def flag(name):
    """The command-line flag of a TrainConfig field."""
    return {"S": "--grid", "B": "--boxes"}.get(name, "--" + name.replace("_", "-"))


def conflict(name, value, before):
    """The error for an option given to --resume with another value than the run's."""
    f = flag(name)
    return TrainError(f"{f} {value} conflicts with the run's {before}: --resume continues the run "
                      f"with all of its options (drop {f}, or start a new run without --resume)")


def _int(cfg, name, low, high=None, optional=False):
    value = getattr(cfg, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrainError(f"{flag(name)} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise TrainError(f"{flag(name)} must be {bound}, got {value}")


def _float(cfg, name, low, high, low_open=False, high_open=False):
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TrainError(f"{flag(name)} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise TrainError(f"{flag(name)} must lie in {lo}{low:g}, {high:g}{hi}, got {value:g}")


def grid_sizes(S):
    """The input sizes that give an S x S grid: 16 S (the backbone at stride 16), or 32 S halved
    k times (stride 32 and k extra stride-2 stages)."""
    return sorted({16 * S} | {32 * S * 2 ** k for k in range(4) if 32 * S * 2 ** k <= 1024})


def grids_for(img_size):
    """The grids an input size can give: size / 16, size / 32, and that halved while whole."""
    size, out = img_size // 32, [img_size // 16]
    while size >= 1:
        out.append(size)
        if size % 2:
            break
        size //= 2
    return out


def stride_for(img_size, S):
    """The backbone stride that gives grid S at this input size: 16 for the finest grid, else 32."""
    return 16 if 16 * S == img_size else 32


def check_img_and_grid(img_size, S):
    """One line naming the sizes that work when an input size and a grid don't fit together."""
    if img_size is not None and (img_size < 32 or img_size % 32):
        near = [s for s in (img_size // 32 * 32, img_size // 32 * 32 + 32) if s >= 32]
        hint = f" for --grid {S} use {' or '.join(map(str, grid_sizes(S)[:2]))}" if S else ""
        raise TrainError(f"--img-size {img_size}: must be a multiple of 32 (the backbone's "
                         f"stride), e.g. {' or '.join(map(str, near))};{hint}".rstrip(";"))
    if img_size is not None and S is not None and S not in grids_for(img_size):
        raise TrainError(f"--img-size {img_size} can't give --grid {S} (its feature map is "
                         f"{img_size // 16} at stride 16, {img_size // 32} at stride 32): for "
                         f"--grid {S} use --img-size {' or '.join(map(str, grid_sizes(S)[:3]))}; "
                         f"--img-size {img_size} works with --grid "
                         f"{' or '.join(map(str, grids_for(img_size)))}")


def check_window(img_size, S, window):
    if window is None or window == 0 or img_size is None or S is None:
        return
    cell = img_size // S
    if window % cell or window > img_size:
        raise TrainError(f"--window {window}: must be a multiple of the {cell}-pixel cell of "
                         f"--img-size {img_size} at --grid {S}, at most {img_size} (0: whole "
                         f"images)")


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Raise TrainError (one line naming the option) for any option that can't work."""
    _int(cfg, "batch_size", 1, 4096)
    _int(cfg, "img_size", 32, 4096, optional=True)
    _int(cfg, "S", 1, 128, optional=True)
    _int(cfg, "window", 0, 4096, optional=True)
    _int(cfg, "B", 1, 16)
    _float(cfg, "width", 0.0, 4.0, low_open=True)
    _float(cfg, "lr", 0.0, 10.0, low_open=True)
    _float(cfg, "weight_decay", 0.0, 1.0)
    _float(cfg, "warmup", 0.0, 1.0, high_open=True)
    _float(cfg, "lambda_class", 0.0, 100.0)
    _float(cfg, "mosaic", 0.0, 1.0)
    _float(cfg, "val_fraction", 0.0, 1.0, low_open=True, high_open=True)
    _int(cfg, "workers", 0, 64)
    _int(cfg, "seed", 0, 2 ** 32 - 1)
    _int(cfg, "steps", 1, 10 ** 8, optional=True)
    _int(cfg, "epochs", 1, 10 ** 6, optional=True)
    _int(cfg, "max_steps", 1, 10 ** 8, optional=True)
    _int(cfg, "log_every", 1, 10 ** 6)
    _int(cfg, "eval_every", 1, 10 ** 6, optional=True)
    _int(cfg, "eval_max_images", 1, 10 ** 8, optional=True)
    if cfg.steps is not None and cfg.epochs is not None:
        raise TrainError(f"give --steps ({cfg.steps}) or --epochs ({cfg.epochs}), not both")
    for name, choices in (("backbone", BACKBONES), ("head", HEADS), ("device", DEVICES)):
        if getattr(cfg, name) not in choices:
            raise TrainError(f"{flag(name)} must be one of {', '.join(choices)}, got "
                             f"{getattr(cfg, name)!r}")
    check_img_and_grid(cfg.img_size, cfg.S)
    check_window(cfg.img_size, cfg.S, cfg.window)
    if cfg.amp not in AMP_MODES:
        raise TrainError(f"--amp must be one of {', '.join(AMP_MODES)}, got {cfg.amp!r}")
    if cfg.tf32 and cfg.device != "cuda":
        raise TrainError("--tf32: TF32 is a mode of NVIDIA GPUs' tensor cores; it needs "
                         "--device cuda")
    if cfg.device == "cuda":
        check_cuda()
    if cfg.tensorboard:
        summary_writer_class()  # tensorboardX is there, before any data is read
    return cfg


def check_cuda():
    from ..backend import cuda_available
    if not cuda_available():
        raise TrainError("--device cuda: CuPy with a working GPU is not available here; install "
                         "the extra for your CUDA version (pip install \".[cuda12]\" or "
                         "\".[cuda13]\") or use --device cpu")
    from ..backend import probe_cuda_libraries
    try:
        probe_cuda_libraries()  # cuBLAS and NVRTC load, before any work
    except RuntimeError as e:
        raise TrainError(f"--device cuda: {e}") from None
