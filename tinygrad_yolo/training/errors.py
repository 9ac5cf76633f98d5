"""The training layer's one error class."""


class TrainError(ValueError):
    """Bad input to train/eval/detect (an option, a run folder, a checkpoint that doesn't fit):
    the CLI prints it as one line."""
