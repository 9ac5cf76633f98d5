"""A training run, from the user's folder of images to a detector and its report.

    config.py      every option, checked before any work starts
    data.py        the dataset in whatever layout, its splits, every image checked up front
    recipe.py      the input size, grid and schedule chosen from the data's statistics
    run_folder.py  one run per folder: auto-numbered, locked, metrics.jsonl
    run.py         train(): the run from the options to the report
    resume.py      continuing a run: its checkpoint, the options given again
    loop.py        Trainer.fit: the steps, exact checkpoints at step boundaries, validation
    signals.py     Ctrl-C / SIGTERM finish the step, save, and exit
    ema.py         a moving average of the weights, evaluated and kept with --ema
    report.py      the console lines and the files of the run folder

Evaluation, detection and the validation pictures are tinygrad_yolo.inference, which training
imports.
"""
from .checkpoint import build_model, load_checkpoint, read_checkpoint
from .config import TrainConfig, check_config
from .data import DEFAULT_DATA, open_training_data
from .errors import TrainError
from .run import train

__all__ = ["TrainConfig", "TrainError", "check_config", "train", "build_model", "load_checkpoint",
           "read_checkpoint", "open_training_data", "DEFAULT_DATA"]
