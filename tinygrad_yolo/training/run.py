"""One training run, from the user's options to a detector and its report.

    check the options  ->  read the data, decode every image once  ->  plan (recipe.py)
    ->  claim the run folder  ->  Trainer.fit (loop.py)  ->  evaluate best.npz  ->  the report

A new run claims its folder only once the data is known to be good, so a mistake leaves no
folder behind; a resumed run locks its folder first (resume.py says which options it takes).

Data-parallel, every rank runs this, each step that can fail taken together (a bad option or
file ends every rank at once: distributed/together.py); rank 0 claims the folder, prints and
writes; the others train their shares and write nothing.
"""
import dataclasses
import os
import time
from pathlib import Path

from ..distributed import from_main, share_from_main, together, world
from ..inference import EvaluationStopped, evaluate, validation_pictures
from . import recipe
from .checkpoint import load_checkpoint
from .config import TrainConfig, check_config
from .data import open_training_data, verify_images
from .errors import TrainError
from .loop import Trainer
from .report import (Console, epoch_rows, plot_confusion, plot_pr_curves, plot_results,
                     start_banner, write_results_csv)
from .resume import checkpoint_to_resume, resume_config
from .run_folder import MetricsLog, NoMetricsLog, RunFolder, dumps
from .signals import StopOnSignal, Stopped


def train(cfg: TrainConfig, resume=False, given=(), progress=True, console=None) -> dict:
    """Train a YOLOv1 detector as ``cfg`` says; returns the final metrics dict (None on the
    ranks other than rank 0).

    resume: continue the run in ``cfg.out`` (the latest run under it when it holds none) with
    the options saved in its checkpoint; ``given`` names the options the user set explicitly,
    which must be the run's unless they may change (resume.py).
    """
    comm = world()
    console = console or (Console(progress=progress) if comm.is_main else silent_console())
    started = time.perf_counter()
    if resume:  # the options checked are the run's, with those given again merged in
        with claim(comm, lambda: RunFolder.existing(cfg.out)) as run:
            saved = together(comm, lambda: checkpoint_to_resume(run / "last.npz"))
            cfg = together(comm, lambda: check_config(resume_config(saved["train_config"], cfg,
                                                                    given)))
            data, plan = together(comm, lambda: prepare(cfg, saved, console, comm.size))
            return fit_and_report(plan, data, run, saved, console, started)
    cfg = together(comm, lambda: absolute_data(check_config(cfg)))
    data, plan = together(comm, lambda: prepare(cfg, None, console, comm.size))
    with claim(comm, lambda: RunFolder.create(plan.config.out, plan.config.exist_ok)) as run:
        return fit_and_report(plan, data, run, None, console, started)


def claim(comm, open_folder):
    """The run folder: opened and locked by rank 0, seen (unlocked, never written) by the
    others."""
    run = from_main(comm, open_folder)
    if comm.size == 1:
        return run
    path = share_from_main(comm, str(run) if comm.is_main else None)
    return run if comm.is_main else RunFolder(path, lock_fd=None)


def silent_console():
    return Console(open(os.devnull, "w", encoding="utf-8"), progress=False)


def absolute_data(cfg):
    """The data path as an absolute one, so a resumed run or `eval` finds it from anywhere."""
    if cfg.data is None:
        return cfg
    return dataclasses.replace(cfg, data=str(Path(os.path.expanduser(cfg.data)).resolve()))


def prepare(cfg, saved, console, ranks=1):
    """(the data, every image checked; the plan made from it). ``saved``: the checkpoint of a
    resumed run, whose splits and choices stand; ``ranks``: the processes sharing each batch."""
    data = open_training_data(cfg, saved["data"] if saved else None)
    if saved and saved["classes"] != data.classes:
        raise TrainError(f"the data's classes {data.classes} are not the run's {saved['classes']}")
    bar = console.bar(len(data.train) + len(data.val), "checking images", unit="img")
    verify_images([data.train, data.val], cfg.workers, bar.update)
    bar.close()
    plan = recipe.plan(cfg, data.train, data.val,
                       saved_config=saved["train_config"] if saved else None)
    for ds in (data.train, data.val):  # big photos: the JPEG decoder shrinks them to 2x the input
        ds.draft_size = 2 * plan.config.img_size
    if plan.config.batch_size % ranks:
        raise TrainError(f"--batch-size {plan.config.batch_size} does not split over {ranks} "
                         f"processes: use a multiple of {ranks}")
    return data, plan


def fit_and_report(plan, data, run, saved, console, started):
    """Train in the claimed run folder, then evaluate and report; returns the final metrics."""
    cfg, comm = plan.config, world()
    main = comm.is_main  # the one rank that writes
    removed = run.clean_temp() if main else []
    with MetricsLog(run / "metrics.jsonl") if main else NoMetricsLog() as log:
        trainer = Trainer(plan, data, run, console, log, started, comm)
        if saved:
            trainer.restore(saved["train"], extended=cfg.steps != saved["train_config"]["steps"])
        elif main:
            (run / "split.json").write_text(dumps(data.info, indent=2) + "\n")
            (run / "config.json").write_text(dumps(dataclasses.asdict(cfg), indent=2) + "\n")
        if data.warnings and main:
            (run / "data_warnings.txt").write_text("\n".join(data.warnings) + "\n")
        p = trainer.progress
        parameters = sum(x.size for x in trainer.model.parameters())
        resumed_at = p.step if saved else None
        console.banner(start_banner(data, plan, parameters, run, resumed_at, removed)
                       + ranks_banner(comm, cfg))
        log.write(event="resume" if saved else "start", step=p.step, epoch=p.epoch,
                  classes=data.classes, train_images=len(data.train), val_images=len(data.val),
                  data=data.info, config=dataclasses.asdict(cfg), processes=comm.size)
        p = trainer.fit()
        train_seconds = time.perf_counter() - started
        log.write(event="trained", step=p.step, seconds=train_seconds)
    if not main:
        return None  # rank 0 evaluates and reports
    return finish(run, data, p, cfg, console, train_seconds)


def ranks_banner(comm, cfg):
    """The banner's line on data-parallel training (none in one process)."""
    if comm.size == 1:
        return []
    norm = ("over the global batch (--sync-bn)" if cfg.sync_bn else
            "per process, running statistics averaged every step")
    return [("processes", f"{comm.size} ranks, {cfg.batch_size // comm.size} images each per "
                          f"step of {cfg.batch_size}; batch norm {norm}")]


def finish(run, data, progress, cfg, console, train_seconds):
    """The final evaluation of best.npz and the report; training is already saved."""
    best_path = run / "best.npz"
    source = best_path if best_path.is_file() else run / "last.npz"
    model, _ = load_checkpoint(source)
    model.to(cfg.device)
    shown_step = progress.best_step or progress.step
    console.line(f"evaluating {source.name} (step {shown_step}) on {len(data.val)} validation "
                 f"images")
    bar = console.bar(len(data.val), "evaluating", unit="img")
    with StopOnSignal(console.line) as stop:
        try:
            metrics = evaluate(model, data.val, cfg.device, cfg.batch_size, workers=cfg.workers,
                               stop=stop, progress=bar.update)
        except EvaluationStopped:
            raise Stopped(f"evaluation stopped by {stop.name}; the trained weights are saved in "
                          f"{source}; evaluate them with: tinygrad-yolo eval --weights {source}",
                          stop.code) from None
    bar.close()
    curves = metrics.pop("curves")
    metrics.update(classes=data.classes, steps=progress.step, epochs=progress.epoch,
                   best_step=progress.best_step, weights=str(source), train_seconds=train_seconds,
                   dropped_objects=progress.dropped, objects=progress.objects,
                   config=dataclasses.asdict(cfg), data=data.info, run=str(run))
    (run / "metrics.json").write_text(dumps(metrics, indent=2) + "\n")
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(dumps({"event": "eval", "step": progress.step, "map50": metrics["map50"],
                       "map50_11pt": metrics["map50_11pt"]}) + "\n")
    console.table(data.classes, metrics)
    title = f"{Path(str(data.source.path)).name}: {source.name}, step {shown_step}"
    files = write_report(run, data, model, metrics, curves, cfg.device, title)
    console.line(f"saved to {run}: {', '.join(files)}")
    return metrics


def write_report(run, data, model, metrics, curves, device, title):
    """results.csv, results.png, pr_curve.png, confusion_matrix.png, val_*.jpg in the run folder."""
    rows = epoch_rows(run / "metrics.jsonl")
    write_results_csv(run / "results.csv", rows)
    plot_results(run / "results.png", run / "metrics.jsonl", title)
    plot_pr_curves(run / "pr_curve.png", curves, data.classes, metrics["ap"],
                   f"precision-recall\n{title}")
    plot_confusion(run / "confusion_matrix.png", curves["confusion"], data.classes,
                   f"confusion matrix at score >= 0.25, IoU >= 0.5\n{title}")
    pictures = validation_pictures(run, model, data.val, device)
    names = ["best.npz", "last.npz", "metrics.json", "results.csv", "results.png", "pr_curve.png",
             "confusion_matrix.png"]
    written = [n for n in names if (run / n).is_file()]
    return written + ([f"val_*.jpg ({len(pictures)})"] if pictures else [])


__all__ = ["train", "prepare", "fit_and_report", "finish", "write_report"]
