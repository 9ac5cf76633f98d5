"""The `tinygrad-yolo` command. Each subcommand lives in tinygrad_yolo/commands/
as a module with ``add_arguments(parser)`` and ``run(args) -> exit code``."""
import argparse
import importlib
import sys

# name -> (module in tinygrad_yolo.commands, one-line help)
COMMANDS = {
    "demo": ("demo", "a small autograd demonstration (what backward() computes, checked by hand)"),
    "train": ("train", "train a YOLOv1 detector (default: synthetic shapes on CPU)"),
    "eval": ("eval", "per-class AP and mAP@0.5 of a checkpoint on a VOC split"),
    "detect": ("detect", "detect objects in images with a checkpoint"),
    "bench": ("bench", "time a YOLO-ResNet18 training step and the data loader"),
    "gradcheck": ("gradcheck", "numeric gradient checks (float64 central differences) of every op"),
    "graph": ("graph", "the computation graph of a model's forward as Graphviz DOT (SVG/PNG with `dot`)"),
}


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 2, no traceback."""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinygrad-yolo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        # Commands import their heavy parts (models, data) inside run(), so --help stays fast.
        modules[name] = importlib.import_module(f"tinygrad_yolo.commands.{module}")
        modules[name].add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    from .memory import keep_freed_memory
    keep_freed_memory()  # a step's arrays are recycled instead of faulted in anew (see memory.py)
    try:
        return modules[args.command].run(args) or 0
    except UserError as e:
        print(f"tinygrad-yolo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinygrad-yolo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # `python -m tinygrad_yolo.cli`: use the imported module's main, so the commands see the same
    # UserError class as this function (this file would otherwise be loaded twice).
    from tinygrad_yolo.cli import main as _main
    sys.exit(_main())
