"""The training recipe, chosen from the data's own statistics when the user doesn't say.

Nothing here knows a dataset by name. From the training split it measures how large the
objects are and how crowded (how many share a grid cell: YOLOv1 learns one object per cell),
and from those it sets

    the input size   large enough that the median object is MIN_OBJECT_PX pixels across (a
                     small CNN needs about 24 px to tell a die's pips apart), at least MIN_IMG
    the grid S       the backbone's map at stride 32 (size / 32), or at stride 16 when at
                     stride 32 more than MAX_SHARED of the objects would share a cell
    the window       whole images when they are small; windows of WINDOW px (at the same
                     resolution) when the input is large: small objects are seen at full size
                     for a fraction of the compute, and detection still runs on the whole image
    the steps        a fixed compute budget (what fits about 12 minutes on two CPU cores),
                     spent at this input size, but never fewer than MIN_EPOCHS passes
    the warm-up      a fraction of the steps;  validation about EVALS times a run

Each choice is stated in the start banner with its reason, and stored in the checkpoint.
"""
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .config import TrainConfig, check_img_and_grid, check_window, conflict, stride_for
from .errors import TrainError

MIN_OBJECT_PX = 24       # the median object's side at the input size
MIN_IMG, MAX_IMG = 224, 640
MAX_SHARED = 0.05        # at most this share of the objects may lose their cell to a larger one
WINDOW = 192             # training windows of large inputs
COMPUTE_BUDGET = 1.9e9   # images x pixels per image over the run: 1,180 steps of 32 at 224^2
STRIDE16_COST = 1.3      # a stride-16 backbone's step, relative to stride 32 at the same size
MIN_EPOCHS = 15
EVALS = 12


def shared_cell_fraction(records, S):
    """The share of objects that are not the largest in their cell at grid S (what
    ``encode_targets`` drops)."""
    dropped = total = 0
    for r in records:
        b = r.boxes[~r.difficult] if len(r.boxes) else r.boxes
        if len(b) == 0:
            continue
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        rows = np.minimum((cy * S).astype(int), S - 1)
        cells = rows * S + np.minimum((cx * S).astype(int), S - 1)
        dropped += len(cells) - len(np.unique(cells))
        total += len(cells)
    return dropped / max(total, 1)


@dataclass
class Statistics:
    images: int
    objects: int
    median_side: float       # sqrt(w h) of the median object, as a fraction of the image side
    small_side: float        # the 10th percentile
    large_side: float        # the 90th percentile
    image_side: float        # the median image's longer side, pixels


def statistics(dataset):
    records = dataset.records
    areas = [(r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1])
             for r in records if len(r.boxes)]
    sides = np.concatenate([np.sqrt(np.clip(a, 0, None)) for a in areas] or [np.zeros(0)])
    image_side = float(np.median([max(r.width, r.height) for r in records])) if records else 0.0
    pct = (lambda q: float(np.percentile(sides, q)) if len(sides) else 0.0)
    return Statistics(len(records), len(sides), pct(50), pct(10), pct(90), image_side)


@dataclass
class Plan:
    config: TrainConfig          # every option resolved
    warmup_steps: int
    epochs: int                  # passes the steps make over the training split (rounded up)
    eval_every: int              # epochs between validations
    augment: dict                # TrainTransform's keyword arguments
    notes: list                  # (banner key, text): each choice and why
    grid: int                    # the training window's grid (S on whole images)
    size_scale: float            # img_size / window: targets and predictions give w, h in the
                                 # whole image's units, what the network predicts when it detects

    def banner_rows(self):
        return list(self.notes)


def choose_size(stats, cfg):
    """(img_size, reason): the median object at least MIN_OBJECT_PX across."""
    if cfg.img_size is not None:
        return cfg.img_size, "as given"
    if cfg.S is not None:
        return max(32 * cfg.S, 16 * cfg.S * math.ceil(MIN_IMG / (16 * cfg.S))), "for --grid"
    want = MIN_OBJECT_PX / max(stats.median_side, 1e-6)
    img = int(min(MAX_IMG, max(MIN_IMG, 32 * math.ceil(want / 32))))
    return img, (f"so that the median object is {MIN_OBJECT_PX}+ px across" if img > MIN_IMG else
                 f"the smallest input; the median object is over {MIN_OBJECT_PX} px there")


def choose_grid(stats, cfg, img, records):
    """(S, reason): img / 32, or img / 16 when at img / 32 too many objects share a cell."""
    if cfg.S is not None:
        return cfg.S, "as given"
    coarse, fine = img // 32, img // 16
    shared = shared_cell_fraction(records, coarse)
    if shared <= MAX_SHARED:
        return coarse, f"stride 32; {shared:.1%} of the objects share a cell there"
    return fine, (f"stride 16: at stride 32 (S = {coarse}) {shared:.1%} of the objects would "
                  f"share a cell")


def choose_window(cfg, img, S, stats):
    if cfg.window is not None:
        return (cfg.window or img), "as given"
    if img <= 2 * WINDOW:
        return img, "whole images"
    cell = img // S
    window = cell * math.ceil(max(WINDOW, 4 * stats.large_side * img) / cell)
    window = min(window, img)
    share = (window / img) ** 2
    return window, (f"windows of {window} px cut from the {img}-px image, around an object 3 times "
                    f"in 4 (small objects at full size for {share:.0%} of the pixels; detection "
                    f"runs on whole images)")


def plan(cfg: TrainConfig, train, val, saved_config=None) -> Plan:
    """Resolve every "choose from the data" option of ``cfg`` for the training split ``train``."""
    cfg = dataclasses.replace(cfg)
    if saved_config is not None:  # a resumed run: its choices stand (steps may have been raised)
        for name in ("img_size", "S", "window"):
            setattr(cfg, name, saved_config[name])
    notes = resolve_input(cfg, statistics(train), train.records)
    asked = cfg.batch_size
    if len(train) < cfg.batch_size:
        notes.append(("batch", f"{len(train)} (the training split is smaller than --batch-size "
                               f"{cfg.batch_size})"))
        cfg.batch_size = len(train)
    if saved_config is not None and cfg.batch_size != saved_config["batch_size"]:
        raise conflict("batch_size", asked, saved_config["batch_size"])
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    window = cfg.window or cfg.img_size
    saved_steps = None if saved_config is None else saved_config["steps"]
    steps, how = choose_steps(cfg, steps_per_epoch, window, saved_steps)
    cfg.steps, cfg.epochs = steps, None
    epochs = math.ceil(cfg.steps / steps_per_epoch)
    warmup_steps = int(round(cfg.warmup * cfg.steps))
    eval_every = cfg.eval_every or max(1, round(epochs / EVALS))
    cfg.eval_every = eval_every
    notes.append(("schedule", f"{cfg.steps:,} steps of batch {cfg.batch_size} = {epochs} epochs of "
                              f"{steps_per_epoch} steps ({how}); AdamW lr {cfg.lr:g}, warm-up "
                              f"{warmup_steps} steps, then cosine; "
                              f"{'EMA of the weights; ' if cfg.ema else ''}validation every "
                              f"{eval_every} epoch{'s' if eval_every > 1 else ''}"))
    augment = dict(scale=0.2, translate=0.2, window=cfg.window or None, mosaic=cfg.mosaic,
                   dataset=train if cfg.mosaic else None)
    return Plan(cfg, warmup_steps, epochs, eval_every, augment, notes,
                grid=window // (cfg.img_size // cfg.S), size_scale=cfg.img_size / window)


def resolve_input(cfg, stats, records):
    """Set the input size, the grid and the window of ``cfg``; returns the banner's notes."""
    img, why_size = choose_size(stats, cfg)
    S, why_grid = choose_grid(stats, cfg, img, records)
    check_img_and_grid(img, S)
    window, why_window = choose_window(cfg, img, S, stats)
    check_window(img, S, window)
    cfg.img_size, cfg.S, cfg.window = img, S, (0 if window == img else window)
    shared = shared_cell_fraction(records, S)
    return [("objects", f"{stats.objects:,} in {stats.images:,} training images; median side "
                        f"{stats.median_side:.1%} of the image, 10% under {stats.small_side:.1%}"),
            ("input", f"{img} x {img}, median object {stats.median_side * img:.0f} px "
                      f"({why_size})"),
            ("grid", f"S = {S}, {img // S}-px cells ({why_grid}); {shared:.1%} of the training "
                     f"objects share a cell and are not learned"),
            ("window", why_window)]


def choose_steps(cfg, steps_per_epoch, window, saved_steps=None):
    """(steps, how chosen): as given, the resumed run's, or a fixed compute budget of at least
    MIN_EPOCHS epochs; a resumed run's may only grow."""
    if cfg.epochs is not None:
        steps, how = cfg.epochs * steps_per_epoch, f"--epochs {cfg.epochs}"
    elif cfg.steps is not None and cfg.steps != saved_steps:
        steps, how = cfg.steps, "--steps"
    elif saved_steps is not None:
        steps, how = saved_steps, "the run's"
    else:
        cost = STRIDE16_COST if stride_for(cfg.img_size, cfg.S) == 16 else 1.0
        budget = int(round(COMPUTE_BUDGET / (cfg.batch_size * window * window * cost)))
        steps = max(budget, MIN_EPOCHS * steps_per_epoch)
        how = (f"a fixed compute budget at {window}^2" if steps == budget else
               f"at least {MIN_EPOCHS} epochs")
    if saved_steps is not None and steps < saved_steps:
        raise TrainError(f"--steps/--epochs can only extend a resumed run: it has {saved_steps} "
                         f"steps, asked for {steps}")
    return int(steps), how


def seek(scheduler, step):
    """Put a closed-form schedule at ``step`` (a resumed run whose length was extended)."""
    scheduler.last_epoch = int(step)
    scheduler.apply_lr()
    return scheduler
