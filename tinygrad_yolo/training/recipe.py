"""The training recipe, chosen from the data's own statistics when the user doesn't say.

Nothing here knows a dataset by name. From the training split it measures how large the
objects are and how crowded (how many share a grid cell: YOLOv1 learns one object per cell),
and from those it sets

    the grid S       the smallest S at which few objects share a cell (<= MAX_SHARED)
    the input size   32 * S (the backbone's stride is 32), at least MIN_IMG
    the steps        a fixed compute budget (what fits about 12 minutes on two CPU cores),
                     spent on this input size, but never fewer than MIN_EPOCHS passes
    the warm-up      a fraction of the steps;  validation about EVALS times a run

Each choice is stated in the start banner with its reason, and stored in the checkpoint.
"""
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .config import TrainConfig, check_img_and_grid, grids_for
from .errors import TrainError

MAX_SHARED = 0.05        # at most this share of the objects may lose their cell to a larger one
MIN_IMG, MAX_IMG = 224, 448
COMPUTE_BUDGET = 1.9e9   # images x pixels per image over the run: 1,180 steps of 32 at 224^2
MIN_EPOCHS = 20
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
        cells = np.minimum((cy * S).astype(int), S - 1) * S + np.minimum((cx * S).astype(int), S - 1)
        dropped += len(cells) - len(np.unique(cells))
        total += len(cells)
    return dropped / max(total, 1)


@dataclass
class Statistics:
    images: int
    objects: int
    median_side: float       # sqrt(w h) of the median object, as a fraction of the image side
    small_side: float        # the 10th percentile
    image_side: float        # the median image's longer side, pixels
    shared: dict = field(default_factory=dict)  # S -> shared_cell_fraction


def statistics(dataset, grids=range(5, 21)):
    records = dataset.records
    sides = np.concatenate([np.sqrt(np.clip((r.boxes[:, 2] - r.boxes[:, 0]) * (r.boxes[:, 3] - r.boxes[:, 1]), 0, None))
                            for r in records if len(r.boxes)] or [np.zeros(0)])
    image_side = float(np.median([max(r.width, r.height) for r in records])) if records else 0.0
    return Statistics(len(records), len(sides), float(np.median(sides)) if len(sides) else 0.0,
                      float(np.percentile(sides, 10)) if len(sides) else 0.0, image_side,
                      {S: shared_cell_fraction(records, S) for S in grids})


@dataclass
class Plan:
    config: TrainConfig          # every option resolved
    warmup_steps: int
    epochs: int                  # passes the steps make over the training split (rounded up)
    eval_every: int              # epochs between validations
    augment: dict                # TrainTransform's keyword arguments
    notes: list                  # (banner key, text): each choice and why

    def banner_rows(self):
        return list(self.notes)


def choose_grid(stats, cfg):
    """(S, img_size, reason) from the objects' crowding and size."""
    if cfg.S is not None and cfg.img_size is not None:
        return cfg.S, cfg.img_size, "as given"
    if cfg.img_size is not None:
        return grids_for(cfg.img_size)[0], cfg.img_size, f"--img-size {cfg.img_size} / 32"
    if cfg.S is not None:
        return cfg.S, max(32 * cfg.S, MIN_IMG // (32 * cfg.S) * 32 * cfg.S or 32 * cfg.S), "32 x --grid"
    candidates = [S for S in sorted(stats.shared) if MIN_IMG <= 32 * S <= MAX_IMG]
    S = next((S for S in candidates if stats.shared[S] <= MAX_SHARED), candidates[-1])
    return S, 32 * S, (f"the smallest grid at which <= {MAX_SHARED:.0%} of the objects share a cell "
                       f"({stats.shared[S]:.1%} do at S = {S})")


def plan(cfg: TrainConfig, train, val, saved_config=None) -> Plan:
    """Resolve every "choose from the data" option of ``cfg`` for the training split ``train``."""
    stats = statistics(train)
    cfg = dataclasses.replace(cfg)
    notes = []
    if saved_config is not None:  # a resumed run: its choices stand (steps may have been raised)
        for name in ("img_size", "S", "batch_size"):
            setattr(cfg, name, saved_config[name])
    S, img, why = choose_grid(stats, cfg)
    check_img_and_grid(img, S)
    cfg.S, cfg.img_size = S, img
    shared = stats.shared.get(S, shared_cell_fraction(train.records, S))
    px = stats.median_side * img
    notes.append(("objects", f"{stats.objects:,} in {stats.images:,} training images; median side "
                             f"{stats.median_side:.1%} of the image ({px:.0f} px at {img}), 10% are under "
                             f"{stats.small_side:.1%}"))
    notes.append(("grid", f"S = {S} at {img} x {img} input: {why}; {shared:.1%} of the training objects "
                          f"share a cell and are not learned"))

    if len(train) < cfg.batch_size:
        notes.append(("batch", f"{len(train)} (the training split is smaller than --batch-size {cfg.batch_size})"))
        cfg.batch_size = len(train)
    steps_per_epoch = max(1, len(train) // cfg.batch_size)
    saved_steps = None if saved_config is None else saved_config["steps"]
    if cfg.epochs is not None:
        steps, how = cfg.epochs * steps_per_epoch, f"--epochs {cfg.epochs}"
    elif cfg.steps is not None and cfg.steps != saved_steps:
        steps, how = cfg.steps, "--steps"
    elif saved_steps is not None:
        steps, how = saved_steps, "the run's"
    else:
        budget = int(round(COMPUTE_BUDGET / (cfg.batch_size * img * img)))
        steps = max(budget, MIN_EPOCHS * steps_per_epoch)
        how = (f"a fixed compute budget at {img}^2 ({budget:,} steps of {cfg.batch_size})" if steps == budget
               else f"at least {MIN_EPOCHS} epochs")
    if saved_steps is not None and steps < saved_steps:
        raise TrainError(f"--steps/--epochs can only extend a resumed run: it has {saved_steps} steps, "
                         f"asked for {steps}")
    cfg.steps, cfg.epochs = int(steps), None
    epochs = math.ceil(cfg.steps / steps_per_epoch)
    warmup_steps = int(round(cfg.warmup * cfg.steps))
    eval_every = cfg.eval_every or max(1, round(epochs / EVALS))
    cfg.eval_every = eval_every
    notes.append(("schedule", f"{cfg.steps:,} steps of batch {cfg.batch_size} = {epochs} epochs of "
                              f"{steps_per_epoch} steps ({how}); AdamW lr {cfg.lr:g}, warm-up "
                              f"{warmup_steps} steps, then cosine; {'EMA of the weights; ' if cfg.ema else ''}"
                              f"validation every {eval_every} epoch{'s' if eval_every > 1 else ''}"))
    augment = dict(scale=0.2, translate=0.2)
    return Plan(cfg, warmup_steps, epochs, eval_every, augment, notes)


def seek(scheduler, step):
    """Put a closed-form schedule at ``step`` (a resumed run whose length was extended)."""
    scheduler.last_epoch = int(step)
    scheduler._apply()
    return scheduler
