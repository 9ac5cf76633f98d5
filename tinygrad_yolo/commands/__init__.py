"""Subcommands of `tinygrad-yolo` (see tinygrad_yolo/cli.py).

``UserError`` lives here, not in cli.py, so commands and the CLI both import it without either
importing the other. Code below the commands raises its own errors (DatasetError, TrainError,
CheckpointError); the CLI prints each of them, and UserError, as one line.
"""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 2, no traceback."""


def user_errors():
    """The exception classes that are the user's input, not our bug: one line, no traceback."""
    from ..data.dataset import DatasetError
    from ..data.loader import DataLoaderError
    from ..export import ExportError
    from ..serialization import CheckpointError
    from ..training.errors import TrainError
    return (UserError, DatasetError, DataLoaderError, CheckpointError, TrainError, ExportError)
