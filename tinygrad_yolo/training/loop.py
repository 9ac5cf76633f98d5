"""The training loop: ``Trainer.fit`` trains from where the run stands to its last step.

    for batch in batches:  step  ->  log  ->  at an epoch's end: validate when due, save

Each batch arrives with its targets encoded on the loader's threads (``EncodeTargets``, the
loader's collate); a step is forward, loss, backward and the optimizer's update, nothing else.

Exactness: a run stopped by Ctrl-C or SIGTERM finishes its step, saves, and exits; resumed, it
ends bit for bit where the uninterrupted run ends (weights, batch-norm statistics, optimizer,
the moving average), because everything random is a function of (seed, epoch, index) or is
saved (the package generator, for dropout).

Data-parallel (several ranks, distributed/): each rank trains its share of every global batch;
after the backward the ranks average their gradients, then agree on the step (mean losses to
log, a stop request, a non-finite loss on any rank). Every rank takes the same decisions at
the same step; each validates a share of the images, and rank 0 alone writes.
"""
import dataclasses
import math
import time
from contextlib import closing
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from .. import optim
from ..amp import GradScaler, autocast_mode
from ..data import TrainTransform
from ..detection import YOLOv1Loss, encode_batch
from ..distributed import DataParallel, ShardedLoader, agreed, world
from ..inference import EvaluationStopped
from ..inference.evaluate import detect_split, score
from ..nn import init
from ..tensor import Tensor
from ..utils import get_rng, seed as seed_everything
from . import recipe
from .checkpoint import build_model, save_checkpoint
from .config import stride_for
from .ema import ModelEMA
from .errors import TrainError
from .pending import PendingSteps
from .signals import StopOnSignal, Stopped

SAVE_EVERY_SECONDS = 300  # mid-epoch checkpoints too, so a long epoch can't lose more than this


@dataclass
class Progress:
    """Where a run stands; every checkpoint keeps it (as a dict, under train/progress)."""
    epoch: int = 0                         # epochs finished
    batch: int = 0                         # batches of the current epoch trained
    step: int = 0                          # optimizer steps taken
    dropped: int = 0                       # objects that lost their cell to a larger one
    objects: int = 0                       # objects trained on
    best_map: Optional[float] = None       # the best validation mAP@0.5 (best.npz's weights)
    best_step: Optional[int] = None
    last_eval_step: Optional[int] = None
    evals: int = 0


class TrainBatch(NamedTuple):
    """What a step receives."""
    images: np.ndarray     # (N, 3, H, W) float32
    targets: np.ndarray    # (N, S, S, 5 + C) float32 (encode_batch), w, h in whole-image units
    dropped: int           # objects that lost their cell to a larger one
    objects: int           # objects trained on


class EncodeTargets:
    """The training loader's collate: a batch's boxes become the loss's target grid, on the
    loader's threads. Difficult/crowd boxes are for evaluation only."""

    def __init__(self, grid, num_classes, size_scale):
        self.grid, self.num_classes, self.size_scale = grid, num_classes, size_scale

    def __call__(self, batch):
        keep = [~d for d in batch.difficult]
        targets, dropped = encode_batch([b[k] for b, k in zip(batch.boxes, keep)],
                                        [lb[k] for lb, k in zip(batch.labels, keep)], self.grid,
                                        self.num_classes, self.size_scale)
        return TrainBatch(batch.images, targets, dropped, int(sum(int(k.sum()) for k in keep)))


class _StopRequested(Exception):
    """A signal asked the loop to stop; raised at a step boundary only."""


class EpochMeter:
    """Images, seconds and mean loss parts since the last epoch line."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.t0, self.images, self.sums, self.steps = time.perf_counter(), 0, {}, 0

    def add_images(self, images):
        self.images += images

    def add_parts(self, parts):
        self.steps += 1
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def rate(self):
        return self.images / max(time.perf_counter() - self.t0, 1e-9)

    def means(self):
        return {k: v / max(self.steps, 1) for k, v in self.sums.items()}


def merge_shares(shares, total):
    """The ranks' lists for every N-th image (rank r's: images r, r + N, ...; each a tuple of
    per-image lists) merged back into the split's order."""
    size = len(shares)
    return tuple([shares[i % size][k][i // size] for i in range(total)]
                 for k in range(len(shares[0])))


class Trainer:
    """One run: its model, optimizer and schedule, and ``fit``, the loop that trains them.

    plan: recipe.plan's choices (the config, the training window's grid and size scale, ...);
    data: training.data's TrainingData; run: the claimed RunFolder; metrics_log: its
    metrics.jsonl; started: the run's perf_counter() start, for the times logged."""

    def __init__(self, plan, data, run, console, metrics_log, started, comm=None):
        self.plan, self.cfg, self.data, self.run = plan, plan.config, data, run
        self.console, self.metrics_log, self.started = console, metrics_log, started
        self.comm = comm or world()
        self.progress = Progress()
        self.build()
        cfg = self.cfg
        if cfg.amp != "off" and cfg.device == "cpu":
            console.line(f"--amp {cfg.amp} on the CPU: the GEMMs' operands are rounded as on a "
                         "GPU, to check the arithmetic; it is slower than float32 here, not faster")
        transform = TrainTransform(cfg.img_size, **plan.augment)
        encode = EncodeTargets(plan.grid, len(data.classes), plan.size_scale)
        # every rank walks the global batches of one process's order, loading its share of each
        self.loader = ShardedLoader(data.train, cfg.batch_size, transform, self.comm.rank,
                                    self.comm.size, shuffle=True, num_workers=cfg.workers,
                                    seed=cfg.seed, collate=encode)
        self.steps_per_epoch = len(self.loader)
        self.stop_agreed = False  # the ranks' decision at the last step (one rank: unused)
        self.stop_at = cfg.steps if cfg.max_steps is None else min(cfg.max_steps, cfg.steps)
        self.stop = StopOnSignal(console.line)
        self.pending = PendingSteps(cfg.device)  # the steps whose loss is still on the device
        self.meter, self.bar, self.last_saved = EpochMeter(), None, None

    # ---- the model and its state ---------------------------------------------------------------
    def build(self):
        """The model, loss, optimizer and schedule (and the moving average), from the seed."""
        cfg, plan = self.cfg, self.plan
        seed_everything(cfg.seed)
        if cfg.device == "cuda" and self.comm.size > 1:
            from ..distributed.nccl import use_local_gpu
            use_local_gpu(self.comm.local_rank)  # one GPU per rank
        self.model = build_model(self.model_config())
        self.model.to(cfg.device)
        self.parallel = DataParallel(self.model, self.comm,
                                     sync_bn=cfg.sync_bn and self.comm.size > 1)
        self.criterion = YOLOv1Loss(S=plan.grid, B=cfg.B, C=len(self.data.classes),
                                    lambda_class=cfg.lambda_class, size_scale=plan.size_scale,
                                    parts_on_host=False)
        self.opt = optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        cosine = optim.CosineAnnealingLR(self.opt, T_max=max(1, cfg.steps - plan.warmup_steps))
        self.sched = optim.LinearWarmup(self.opt, warmup_steps=plan.warmup_steps, start_factor=0.1,
                                        after=cosine)
        self.scaler = GradScaler(enabled=cfg.amp == "fp16")  # float16's range needs loss scaling
        if cfg.tf32:
            from .. import cuda
            cuda.set_tf32(True)
        self.ema = None
        if cfg.ema:
            with init.skip_init():
                average = build_model(self.model.config).to(cfg.device)
            self.ema = ModelEMA(self.model, average, steps=cfg.steps)

    def model_config(self):
        cfg = self.cfg
        return dict(backbone=cfg.backbone, S=cfg.S, B=cfg.B, C=len(self.data.classes),
                    img_size=cfg.img_size, width=cfg.width, head=cfg.head,
                    stride=stride_for(cfg.img_size, cfg.S))

    @property
    def eval_model(self):
        return self.ema.model if self.ema is not None else self.model

    def restore(self, train_state, extended=False):
        """Continue from a checkpoint's training state; ``extended``: the run was given more steps,
        so its schedule (a closed-form function of the step) is the new one, at the saved step."""
        self.model.load_state_dict(train_state["model"])
        self.opt.load_state_dict(train_state["optimizer"])
        self.progress = Progress(**train_state["progress"])
        if extended:
            recipe.seek(self.sched, self.progress.step)
        else:
            self.sched.load_state_dict(train_state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(train_state["ema"])
        if self.scaler.is_enabled() and train_state.get("scaler"):
            self.scaler.load_state_dict(train_state["scaler"])
        get_rng().bit_generator.state = train_state["rng"]

    def checkpoint(self, full=True):
        """The checkpoint dict (checkpoint.py); ``full``: with the state to continue from."""
        ckpt = {"model": self.eval_model.state_dict(), "config": self.model.config,
                "classes": list(self.data.classes), "data": self.data.info,
                "train_config": dataclasses.asdict(self.cfg)}
        if full:
            ckpt["train"] = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                             "scheduler": self.sched.state_dict(),
                             "progress": dataclasses.asdict(self.progress),
                             "ema": None if self.ema is None else self.ema.state_dict(),
                             "rng": get_rng().bit_generator.state}
            if self.scaler.is_enabled():
                ckpt["train"]["scaler"] = self.scaler.state_dict()
        return ckpt

    # ---- the loop ------------------------------------------------------------------------------
    def fit(self):
        """Train to the run's last step (or --max-steps); a signal stops it saved (Stopped)."""
        self.model.train()
        self.meter.reset()
        self.last_saved = time.perf_counter()
        with self.stop, closing(self.batches()) as batches:
            try:
                if self.eval_due():  # resumed at an epoch's end whose validation a signal stopped
                    self.validate_and_save()
                for batch in batches:
                    self.check_stop()
                    self.log(*self.step(batch), images=len(batch.images))
                    if self.progress.batch >= self.steps_per_epoch:
                        self.end_epoch()
                    elif time.perf_counter() - self.last_saved > SAVE_EVERY_SECONDS:  # a long epoch
                        self.save()
                    if self.progress.step >= self.stop_at:
                        break
                self.close_bar()
                self.check_stop()
                if self.eval_due():  # the run ended inside an epoch (--max-steps, or part epochs)
                    self.epoch_line(*self.validate_and_save())
            except (_StopRequested, EvaluationStopped):
                self.save_and_stop()
            finally:
                self.close_bar()
        return self.progress

    def batches(self):
        """The training batches from where the run stands on, epochs following each other (the
        loader never stalls between them); none when the run is already at its end."""
        p = self.progress
        if p.step >= self.stop_at:
            return
        stream = self.loader.stream(p.epoch, p.batch)
        try:
            for _, _, batch in stream:
                yield batch
        finally:
            stream.close()  # stops the loader's threads

    def step(self, batch):
        """One optimizer step; returns the loss and its parts as they are on the device."""
        with autocast_mode(self.cfg.amp):  # --amp: the GEMMs' operands in 16 bits
            pred = self.model(Tensor(batch.images, device=self.cfg.device))
        loss, parts = self.criterion(pred, batch.targets)
        self.opt.zero_grad()
        self.scaler.scale(loss).backward()  # the loss itself unless --amp fp16
        self.parallel.exchange()  # the gradients become the ranks' mean (one rank: nothing)
        loss, counts = loss.data.reshape(()), dict(dropped=batch.dropped, objects=batch.objects)
        if self.comm.size > 1:
            loss, parts, counts = self.agree(loss, parts, counts)
        elif self.cfg.device == "cpu":  # free here; on a GPU the loop checks when it reads the loss
            self.check_finite(float(loss), self.progress.step + 1)
        self.scaler.step(self.opt)  # self.opt.step(), skipped on inf/NaN gradients under fp16
        self.scaler.update()
        self.sched.step()
        if self.ema is not None:
            self.ema.update()
        p = self.progress
        p.step, p.batch = p.step + 1, p.batch + 1
        p.dropped, p.objects = p.dropped + counts["dropped"], p.objects + counts["objects"]
        return loss, parts

    def agree(self, loss, parts, counts):
        """The ranks' step taken together, before any update: the mean loss and parts (what every
        rank logs), the objects every rank trained on, a stop request from any rank, and a
        non-finite loss on any rank, which stops every rank with the same error."""
        seen = self.parallel.agree(float(loss), {k: float(v) for k, v in parts.items()},
                                   stop=self.stop.requested, counts=counts)
        if seen.bad_rank is not None:
            step, where = self.progress.step + 1, f" on rank {seen.bad_rank}"
            raise agreed(self.not_finite(seen.bad_loss, step, where), 0, self.comm)
        self.stop_agreed = seen.stop
        mean_parts = {k: np.float64(v) for k, v in seen.parts.items()}
        return np.float64(seen.loss), mean_parts, seen.counts

    def log(self, loss, parts, images):
        """Keep the step's loss with the host values that go with it, and hand the steps whose
        losses are read to ``take``: each step on the CPU; on a GPU every log line, epoch end
        and save, one wait for all the steps since (pending.py)."""
        p = self.progress
        if self.bar is None:
            title = f"epoch {p.epoch + 1}/{self.plan.epochs}"
            self.bar = self.console.bar(self.steps_per_epoch, title, initial=p.batch - 1)
        self.meter.add_images(images * self.comm.size)  # every rank trained as many
        info = dict(step=p.step, epoch=p.epoch, lr=self.opt.param_groups[0]["lr"],
                    images_per_s=self.meter.rate(), dropped=p.dropped, objects=p.objects)
        self.take(self.pending.add(loss, parts, info))
        saving = time.perf_counter() - self.last_saved > SAVE_EVERY_SECONDS
        if (p.step % self.cfg.log_every == 0 or p.step == 1 or p.batch >= self.steps_per_epoch
                or p.step >= self.stop_at or saving):
            self.settle()
        self.bar.update(1)

    def take(self, records):
        """The steps' losses, now floats: checked, added to the epoch's means, shown, logged."""
        for value, parts, info in records:
            self.check_finite(value, info["step"])
            self.meter.add_parts(parts)
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{value:.3f}", img_s=f"{info['images_per_s']:.0f}")
            if info["step"] % self.cfg.log_every == 0 or info["step"] == 1:
                self.metrics_log.write(event="step", step=info["step"], epoch=info["epoch"],
                                       loss=value, **parts, lr=info["lr"],
                                       images_per_s=info["images_per_s"],
                                       dropped_objects=info["dropped"], objects=info["objects"])

    def settle(self):
        self.take(self.pending.flush())

    def check_finite(self, value, step):
        if not math.isfinite(value):
            raise self.not_finite(value, step)

    def not_finite(self, value, step, where=""):
        return TrainError(f"the loss became {value} at step {step}{where}; last.npz holds the run "
                          f"as it was before; try a lower --lr (now {self.cfg.lr:g})")

    # ---- epochs, validation, checkpoints -------------------------------------------------------
    def end_epoch(self):
        self.close_bar()
        p = self.progress
        p.epoch, p.batch = p.epoch + 1, 0
        self.epoch_line(*self.validate_and_save())

    def eval_due(self):
        p = self.progress
        finished_epoch = p.batch == 0 and p.epoch > 0
        at_end = p.step >= self.stop_at
        return p.last_eval_step != p.step and (
            at_end or (finished_epoch and p.epoch % self.plan.eval_every == 0))

    def validate_and_save(self):
        """At an epoch's end and the run's: validation when due, then last.npz. Returns
        (mAP, best so far?)."""
        self.settle()
        value, improved = self.validate() if self.eval_due() else (None, False)
        self.save()
        return value, improved

    def validate(self):
        """mAP@0.5 of the evaluated weights on the validation split; best.npz keeps the best."""
        p = self.progress
        value = self.validation_map()
        p.last_eval_step = p.step
        p.evals += 1
        improved = value is not None and (p.best_map is None or value > p.best_map)
        if improved:
            p.best_map, p.best_step = value, p.step
            self.write_checkpoint("best.npz", full=False)
        return value, improved

    def validation_map(self):
        """The evaluated weights' mAP@0.5 on the validation split; a signal during it stops the
        run. Several ranks each detect every N-th image and score all of them together."""
        cfg, comm = self.cfg, self.comm
        images = self.data.val
        if cfg.eval_max_images:
            images = images.subset(range(min(cfg.eval_max_images, len(images))), images.split)
        share = images.subset(range(comm.rank, len(images), comm.size), images.split)
        try:
            found, stopped = detect_split(self.eval_model, share, cfg.device, cfg.batch_size,
                                          cfg.workers, stop=self.stop), False
        except EvaluationStopped:
            found, stopped = None, True
        everyone = comm.allgather_object((found, stopped))
        if any(stopped for _, stopped in everyone):
            raise EvaluationStopped()
        merged = merge_shares([found for found, _ in everyone], len(images))
        metrics = score(*merged, self.eval_model.C)
        self.val_coco = {k: metrics[k] for k in ("map50_coco", "map50_95")}  # for the epoch line
        return metrics["map50"]

    def save(self):
        """last.npz, once the pending steps' losses are known to be finite."""
        self.settle()
        self.write_checkpoint("last.npz")
        self.last_saved = time.perf_counter()

    def write_checkpoint(self, name, full=True):
        if self.comm.is_main:  # every rank holds the same state: rank 0 writes it
            save_checkpoint(self.run / name, self.checkpoint(full))

    def epoch_line(self, val, improved):
        p, cfg, rate = self.progress, self.cfg, self.meter.rate()
        eta = (self.stop_at - p.step) * cfg.batch_size / max(rate, 1e-9)
        shown = p.epoch + (1 if p.batch else 0)  # a run that ends inside an epoch shows that one
        self.console.epoch(shown, self.plan.epochs, p.step, cfg.steps, self.meter.means(), rate,
                           eta, val, improved)
        self.metrics_log.write(event="epoch", step=p.step, epoch=p.epoch,
                               seconds=time.perf_counter() - self.started, map50=val,
                               best_map50=p.best_map, **(self.val_coco if val is not None else {}))
        self.meter.reset()

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # ---- stopping ------------------------------------------------------------------------------
    def check_stop(self):
        """At a step boundary: one rank stops when asked; ranks stop when they agreed to."""
        if self.stop_agreed if self.comm.size > 1 else self.stop.requested:
            raise _StopRequested()

    def save_and_stop(self):
        """Save at this step boundary (settling first: a non-finite loss among the pending steps
        raises instead), then raise Stopped, which carries the exit status."""
        self.save()
        p = self.progress
        self.metrics_log.write(event="stopped", step=p.step, epoch=p.epoch, signal=self.stop.name)
        name, code = self.stop.name, self.stop.code
        if not self.stop.requested:  # another rank was asked, and this one stops with it
            name, code = "a signal to another rank", 143
        stopped = Stopped(f"stopped by {name} at step {p.step} of {self.cfg.steps}: saved "
                          f"{self.run / 'last.npz'}; continue with: tinygrad-yolo train --resume "
                          f"--out {self.run}", code)
        raise (agreed(stopped, 0, self.comm) if self.comm.size > 1 else stopped) from None


__all__ = ["Trainer", "Progress", "TrainBatch", "EncodeTargets", "SAVE_EVERY_SECONDS"]
