"""The training run: options and data checked first, a schedule chosen from the data, then the
loop, which saves an exact checkpoint at step boundaries and keeps the best weights seen.

    check the options  ->  read the data, decode every image once  ->  plan (recipe.py)
    ->  claim a run folder  ->  steps, with validation every few epochs  ->  save best.npz and
    last.npz  ->  evaluate best.npz  ->  the report

Exactness: a run stopped by Ctrl-C or SIGTERM finishes its step, saves, and exits; resumed, it
ends bit for bit where the uninterrupted run ends (weights, batch-norm statistics, optimizer,
the moving average), because everything random is a function of (seed, epoch, index) or is
saved (the package generator, for dropout).
"""
import dataclasses
import math
import os
import time
from pathlib import Path


from .. import optim
from ..data import DataLoader, TrainTransform
from ..detection import YOLOv1Loss, encode_batch
from ..inference import EvaluationStopped, evaluate, validation_pictures
from ..nn import init
from ..tensor import Tensor
from ..utils import get_rng, seed as seed_everything
from . import recipe
from .checkpoint import build_model, read_checkpoint, save_checkpoint
from .config import RUNTIME_OPTIONS, TrainConfig, check_config, stride_for
from .data import open_training_data, verify_images
from .ema import ModelEMA
from .pending import PendingSteps
from .errors import TrainError
from .report import Console, epoch_rows, plot_confusion, plot_pr_curves, plot_results, write_results_csv
from .run_folder import MetricsLog, RunFolder, dumps, latest_run
from .signals import StopOnSignal, Stopped

SAVE_EVERY_SECONDS = 300  # mid-epoch checkpoints too, so a long epoch can't lose more than this


class _StopRequested(Exception):
    """A signal asked the loop to stop; raised at a step boundary only."""


class _EpochMeter:
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


def resume_config(saved: dict, cfg: TrainConfig, given) -> TrainConfig:
    """The saved run's options; an option given again must agree with it, except the runtime
    ones (device, workers, ...) and a larger --steps / --epochs, which extends the run."""
    merged = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.names()})
    for name in given:
        value, before = getattr(cfg, name), saved.get(name)
        if name in RUNTIME_OPTIONS:
            setattr(merged, name, value)
        elif name in ("steps", "epochs"):
            setattr(merged, name, value)  # checked against the saved schedule once the data is read
        elif name in ("out", "resume"):
            continue
        elif name == "data" and value is not None and before is not None and _same_path(value, before):
            continue
        elif value != before:
            flag = "--" + {"S": "grid", "B": "boxes"}.get(name, name).replace("_", "-")
            raise TrainError(f"{flag} {value} conflicts with the run's {before}: --resume continues the run "
                             f"with all of its options (drop {flag}, or start a new run without --resume)")
    return merged


def _same_path(a, b):
    return Path(os.path.expanduser(a)).resolve() == Path(os.path.expanduser(b)).resolve()


def _absolute_data(cfg):
    """The data path as an absolute one, so a resumed run or `eval` finds it from anywhere."""
    if cfg.data is None:
        return cfg
    return dataclasses.replace(cfg, data=str(Path(os.path.expanduser(cfg.data)).resolve()))


class Trainer:
    """One run. ``train()`` below is the whole procedure; this object holds its state."""

    def __init__(self, cfg, console):
        self.cfg, self.console = cfg, console
        self.state = dict(epoch=0, batch=0, step=0, dropped=0, objects=0, best_map=None, best_step=None,
                          last_eval_step=None, evals=0)

    # ---- setup ---------------------------------------------------------------------------------
    def build(self, classes, plan):
        cfg = self.cfg
        seed_everything(cfg.seed)
        self.model = build_model(self.model_config(len(classes)))
        self.model.to(cfg.device)
        # Training on windows: the grid of a window, and w, h measured in the whole image's units
        # (what the network predicts when it detects on a whole image) scaled to the window's.
        window = cfg.window or cfg.img_size
        self.grid = window // (cfg.img_size // cfg.S)
        self.size_scale = cfg.img_size / window
        self.criterion = YOLOv1Loss(S=self.grid, B=cfg.B, C=len(classes), lambda_class=cfg.lambda_class,
                                    size_scale=self.size_scale, parts_on_host=False)
        self.opt = optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = optim.LinearWarmup(self.opt, warmup_steps=plan.warmup_steps, start_factor=0.1,
                                        after=optim.CosineAnnealingLR(self.opt, T_max=max(1, cfg.steps - plan.warmup_steps)))
        self.ema = None
        if cfg.ema:
            with init.skip_init():
                average = build_model(self.model.config).to(cfg.device)
            self.ema = ModelEMA(self.model, average, steps=cfg.steps)

    def model_config(self, num_classes):
        cfg = self.cfg
        return dict(backbone=cfg.backbone, S=cfg.S, B=cfg.B, C=num_classes, img_size=cfg.img_size, width=cfg.width,
                    head=cfg.head, stride=stride_for(cfg.img_size, cfg.S))

    @property
    def eval_model(self):
        return self.ema.model if self.ema is not None else self.model

    def restore(self, train_state, extended=False):
        """Continue from a checkpoint's training state; ``extended``: the run was given more steps,
        so its schedule (a closed-form function of the step) is the new one, at the saved step."""
        self.model.load_state_dict(train_state["model"])
        self.opt.load_state_dict(train_state["optimizer"])
        self.state.update(train_state["progress"])
        if extended:
            recipe.seek(self.sched, self.state["step"])
        else:
            self.sched.load_state_dict(train_state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(train_state["ema"])
        get_rng().bit_generator.state = train_state["rng"]

    def checkpoint(self, data_info, classes, full=True):
        ckpt = {"model": self.eval_model.state_dict(), "config": self.model.config, "classes": list(classes),
                "data": data_info, "train_config": dataclasses.asdict(self.cfg)}
        if full:
            ckpt["train"] = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                             "scheduler": self.sched.state_dict(), "progress": dict(self.state),
                             "ema": None if self.ema is None else self.ema.state_dict(),
                             "rng": get_rng().bit_generator.state}
        return ckpt

    # ---- one step ------------------------------------------------------------------------------
    def step(self, batch, num_classes):
        keep = [~d for d in batch.difficult]  # difficult/crowd boxes are for evaluation only
        targets, lost = encode_batch([b[k] for b, k in zip(batch.boxes, keep)],
                                     [lb[k] for lb, k in zip(batch.labels, keep)], self.grid, num_classes)
        targets[..., 2:4] /= self.size_scale  # w, h of the whole image, as the network predicts them
        pred = self.model(Tensor(batch.images, device=self.cfg.device))
        loss, parts = self.criterion(pred, targets)
        self.opt.zero_grad()
        loss.backward()
        if self.cfg.device == "cpu":  # free here; on a GPU the loop checks when it reads the loss (pending.py)
            self.check_finite(float(loss.data), self.state["step"] + 1)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update()
        self.state["step"] += 1
        self.state["batch"] += 1
        self.state["dropped"] += lost
        self.state["objects"] += int(sum(int(k.sum()) for k in keep))
        return loss.data.reshape(()), parts

    def check_finite(self, value, step):
        if not math.isfinite(value):
            raise TrainError(f"the loss became {value} at step {step}; last.npz holds the run "
                             f"as it was before; try a lower --lr (now {self.cfg.lr:g})")


def _data_banner(data, plan, cfg):
    src = data.source
    train_line = f"train {len(data.train):,} images / {data.train.num_boxes():,} boxes ({data.info['train_split']})"
    if data.info.get("held_out"):
        held = data.info["held_out"]
        val_line = (f"val {len(data.val):,} images / {data.val.num_boxes():,} boxes: {held['fraction']:.0%} of "
                    f"{data.info['train_split']} held out (seed {held['seed']}; the ids are in the checkpoint "
                    f"and split.json)")
    else:
        val_line = f"val {len(data.val):,} images / {data.val.num_boxes():,} boxes ({data.info['val_split']})"
    names = ", ".join(src.classes) if len(src.classes) <= 24 else ", ".join(src.classes[:24]) + ", ..."
    rows = [("data", [f"{src.layout} at {src.path}", train_line, val_line] + src.notes),
            ("classes", f"{len(src.classes)}: {names}")]
    return rows + plan.banner_rows()


def train(cfg: TrainConfig, resume=False, given=(), progress=True, console=None) -> dict:
    """Train a YOLOv1 detector as ``cfg`` says; returns the final metrics dict.

    resume: continue the run in ``cfg.out`` (the latest run under it when it holds none) with
    the options saved in its checkpoint; ``given`` names the options the user set explicitly.
    """
    console = console or Console(progress=progress)
    check_config(cfg)
    cfg = _absolute_data(cfg)
    saved = None
    if resume:
        folder = Path(cfg.out) if (Path(cfg.out) / "last.npz").is_file() else latest_run(cfg.out)
        run = RunFolder.existing(folder)
        try:
            saved = read_checkpoint(run / "last.npz")
            if "train" not in saved:
                raise TrainError(f"{run / 'last.npz'}: holds no training state to resume from")
            cfg = resume_config(saved["train_config"], cfg, given)
            check_config(cfg)
        except BaseException:
            run.close()
            raise
    else:
        run = None
    runs = [run]  # _train claims a new run's folder once the data has been checked
    try:
        return _train(cfg, runs, saved, console)
    finally:
        if runs[-1] is not None:
            runs[-1].close()


def _train(cfg, runs, saved, console):
    started = time.perf_counter()
    run = runs[0]
    data = open_training_data(cfg, saved["data"] if saved else None)
    if saved and saved["classes"] != data.classes:
        raise TrainError(f"the data's classes {data.classes} are not the run's {saved['classes']}")
    bar = console.bar(len(data.train) + len(data.val), "checking images", unit="img")
    verify_images([data.train, data.val], cfg.workers, bar.update)
    bar.close()
    plan = recipe.plan(cfg, data.train, data.val, saved_config=saved["train_config"] if saved else None)
    cfg = plan.config
    for ds in (data.train, data.val):  # big photos: let the JPEG decoder shrink them (2x the input is plenty)
        ds.draft_size = 2 * cfg.img_size
    if run is None:
        run = RunFolder.create(cfg.out, cfg.exist_ok)
        runs.append(run)
        fresh = True
    else:
        fresh = False
    removed = run.clean_temp()
    trainer = Trainer(cfg, console)
    trainer.build(data.classes, plan)
    if saved:
        trainer.restore(saved["train"], extended=cfg.steps != saved["train_config"]["steps"])
    else:
        (run / "split.json").write_text(dumps(data.info, indent=2) + "\n")
        (run / "config.json").write_text(dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    if data.warnings:
        (run / "data_warnings.txt").write_text("\n".join(data.warnings) + "\n")

    log = MetricsLog(run / "metrics.jsonl")
    state = trainer.state
    rows = _data_banner(data, plan, cfg)
    rows += [("model", f"YOLOv1 on {cfg.backbone} (width {cfg.width:g}, {cfg.head} head): "
                       f"{sum(p.size for p in trainer.model.parameters()):,} parameters"),
             ("device", cfg.device), ("run", f"{run}" + ("" if fresh else f" (resumed at step {state['step']})"))]
    if data.warnings:
        rows.append(("warnings", [f"{len(data.warnings)} about the data (in {run / 'data_warnings.txt'}), e.g.",
                                  *data.warnings[:3]]))
    if removed:
        rows.append(("cleaned", f"{len(removed)} temporary file(s) of an interrupted save"))
    console.banner(rows)
    log.write(event="start" if fresh else "resume", step=state["step"], epoch=state["epoch"], classes=data.classes,
              train_images=len(data.train), val_images=len(data.val), data=data.info, config=dataclasses.asdict(cfg))

    loader = DataLoader(data.train, cfg.batch_size, TrainTransform(cfg.img_size, **plan.augment), shuffle=True,
                        drop_last=True, num_workers=cfg.workers, seed=cfg.seed)
    steps_per_epoch = len(loader)
    stop_at = cfg.steps if cfg.max_steps is None else min(cfg.max_steps, cfg.steps)
    epochs = plan.epochs
    num_classes = len(data.classes)
    last = run / "last.npz"
    best = run / "best.npz"

    def save_last():
        settle()  # no checkpoint before the pending steps' losses are known to be finite
        save_checkpoint(last, trainer.checkpoint(data.info, data.classes))

    def validate(stop):
        """Validation of the averaged weights; keeps best.npz. Returns (mAP, best?)."""
        metrics = evaluate(trainer.eval_model, data.val, cfg.device, cfg.batch_size, cfg.eval_max_images,
                           cfg.workers, stop=stop)
        value = metrics["map50"]
        state["last_eval_step"] = state["step"]
        state["evals"] += 1
        improved = value is not None and (state["best_map"] is None or value > state["best_map"])
        if improved:
            state["best_map"], state["best_step"] = value, state["step"]
            save_checkpoint(best, trainer.checkpoint(data.info, data.classes, full=False))
        return value, improved

    def eval_due():
        finished_epoch = state["batch"] == 0 and state["epoch"] > 0
        at_end = state["step"] >= stop_at
        return (state["last_eval_step"] != state["step"]) and (
            at_end or (finished_epoch and state["epoch"] % plan.eval_every == 0))

    meter = _EpochMeter()
    pending = PendingSteps(cfg.device)  # the steps whose loss is still on the device
    last_saved = time.perf_counter()
    bar = None

    def take(records):
        """The steps' losses, now floats: checked, added to the epoch's means, shown, logged."""
        for value, parts, info in records:
            trainer.check_finite(value, info["step"])
            meter.add_parts(parts)
            if bar is not None:
                bar.set_postfix(loss=f"{value:.3f}", img_s=f"{info['images_per_s']:.0f}")
            if info["step"] % cfg.log_every == 0 or info["step"] == 1:
                log.write(event="step", step=info["step"], epoch=info["epoch"], loss=value, **parts, lr=info["lr"],
                          images_per_s=info["images_per_s"], dropped_objects=info["dropped"],
                          objects=info["objects"])

    def settle():
        take(pending.flush())

    def boundary():
        """At the end of an epoch and of the run: validate when due, then save."""
        settle()
        val, improved = validate(stop) if eval_due() else (None, False)
        save_last()
        return val, improved

    def epoch_line(val, improved):
        rate = meter.rate()
        eta = (stop_at - state["step"]) * cfg.batch_size / max(rate, 1e-9)
        shown = state["epoch"] + (1 if state["batch"] else 0)  # a run that ends inside an epoch shows that one
        console.epoch(shown, epochs, state["step"], cfg.steps, meter.means(), rate, eta, val, improved)
        log.write(event="epoch", step=state["step"], epoch=state["epoch"], seconds=time.perf_counter() - started,
                  map50=val, best_map50=state["best_map"])
        meter.reset()

    trainer.model.train()
    with StopOnSignal(console.line) as stop:
        stream = loader.stream(state["epoch"], state["batch"]) if state["step"] < stop_at else iter(())
        bar = None
        try:
            if eval_due():  # resumed at an epoch's end whose validation a signal interrupted
                boundary()
            for epoch, k, batch in stream:  # epochs follow each other; the loader never stalls between
                if stop.requested:
                    raise _StopRequested()
                if bar is None:
                    bar = console.bar(steps_per_epoch, f"epoch {epoch + 1}/{epochs}", initial=k)
                loss, parts = trainer.step(batch, num_classes)
                meter.add_images(len(batch.images))
                take(pending.add(loss, parts, dict(step=state["step"], epoch=state["epoch"],
                                                   lr=trainer.opt.param_groups[0]["lr"], images_per_s=meter.rate(),
                                                   dropped=state["dropped"], objects=state["objects"])))
                if (state["step"] % cfg.log_every == 0 or state["step"] == 1 or state["batch"] >= steps_per_epoch
                        or state["step"] >= stop_at or time.perf_counter() - last_saved > SAVE_EVERY_SECONDS):
                    settle()  # a GPU waits here, once per log line, epoch and save
                bar.update(1)
                if state["batch"] >= steps_per_epoch:
                    bar.close()
                    bar = None
                    state["epoch"], state["batch"] = state["epoch"] + 1, 0
                    epoch_line(*boundary())
                    last_saved = time.perf_counter()
                elif time.perf_counter() - last_saved > SAVE_EVERY_SECONDS:  # a long epoch
                    save_last()
                    last_saved = time.perf_counter()
                if state["step"] >= stop_at:
                    break
            if bar is not None:
                bar.close()
            if stop.requested:
                raise _StopRequested()
            if eval_due():  # the run ended inside an epoch (--max-steps, or steps not a whole number of epochs)
                epoch_line(*boundary())
        except (_StopRequested, EvaluationStopped):
            save_last()  # settles first: a non-finite loss among the pending steps raises instead
            log.write(event="stopped", step=state["step"], epoch=state["epoch"], signal=stop.name)
            raise Stopped(f"stopped by {stop.name} at step {state['step']} of {cfg.steps}: saved {last}; continue "
                          f"with: tinygrad-yolo train --resume --out {run}", stop.code) from None
        finally:
            if hasattr(stream, "close"):
                stream.close()  # stops the loader's threads
    train_seconds = time.perf_counter() - started
    log.write(event="trained", step=state["step"], seconds=train_seconds)
    log.close()
    return finish(run, data, trainer, cfg, plan, console, train_seconds)


def finish(run, data, trainer, cfg, plan, console, train_seconds):
    """The final evaluation of best.npz and the report; training is already saved."""
    from .checkpoint import load_checkpoint
    best_path = run / "best.npz"
    source = best_path if best_path.is_file() else run / "last.npz"
    model, ckpt = load_checkpoint(source)
    model.to(cfg.device)
    state = trainer.state
    console.line(f"evaluating {source.name} (step {state['best_step'] or state['step']}) on {len(data.val)} "
                 f"validation images")
    bar = console.bar(len(data.val), "evaluating", unit="img")
    with StopOnSignal(console.line) as stop:
        try:
            metrics = evaluate(model, data.val, cfg.device, cfg.batch_size, workers=cfg.workers, stop=stop,
                               progress=bar.update)
        except EvaluationStopped:
            raise Stopped(f"evaluation stopped by {stop.name}; the trained weights are saved in {source}; evaluate "
                          f"them with: tinygrad-yolo eval --weights {source}", stop.code) from None
    bar.close()
    curves = metrics.pop("curves")
    metrics.update(classes=data.classes, steps=state["step"], epochs=state["epoch"], best_step=state["best_step"],
                   weights=str(source), train_seconds=train_seconds, dropped_objects=state["dropped"],
                   objects=state["objects"], config=dataclasses.asdict(cfg), data=data.info, run=str(run))
    (run / "metrics.json").write_text(dumps(metrics, indent=2) + "\n")
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(dumps({"event": "eval", "step": state["step"], "map50": metrics["map50"],
                       "map50_11pt": metrics["map50_11pt"]}) + "\n")
    console.table(data.classes, metrics)
    title = f"{Path(str(data.source.path)).name}: {source.name}, step {state['best_step'] or state['step']}"
    files = write_report(run, data, model, metrics, curves, cfg.device, title)
    console.line(f"saved to {run}: {', '.join(files)}")
    return metrics


def write_report(run, data, model, metrics, curves, device, title):
    """results.csv, results.png, pr_curve.png, confusion_matrix.png and val_*.jpg in the run folder."""
    rows = epoch_rows(run / "metrics.jsonl")
    write_results_csv(run / "results.csv", rows)
    plot_results(run / "results.png", run / "metrics.jsonl", title)
    plot_pr_curves(run / "pr_curve.png", curves, data.classes, metrics["ap"], f"precision-recall\n{title}")
    plot_confusion(run / "confusion_matrix.png", curves["confusion"], data.classes,
                   f"confusion matrix at score >= 0.25, IoU >= 0.5\n{title}")
    pictures = validation_pictures(run, model, data.val, device)
    names = ["best.npz", "last.npz", "metrics.json", "results.csv", "results.png", "pr_curve.png",
             "confusion_matrix.png"]
    return [n for n in names if (run / n).is_file()] + ([f"val_*.jpg ({len(pictures)})"] if pictures else [])


__all__ = ["train", "resume_config", "Trainer", "finish"]
