"""The `tinygrad-yolo` command. Each subcommand lives in tinygrad_yolo/commands/
as a module with ``add_arguments(parser)`` and ``run(args) -> exit code``."""
import argparse
import importlib
import sys

from . import __version__
from .commands import user_errors

# name -> (module in tinygrad_yolo.commands, one-line help)
COMMANDS = {
    "demo": ("demo", "a small autograd demonstration (what backward() computes, checked by hand)"),
    "train": ("train", "train a YOLOv1 detector on your data (a VOC, XML, YOLO-txt or COCO folder) "
                       "or the built-in synthetic set"),
    "eval": ("eval", "per-class AP and mAP@0.5 of a checkpoint on a split of its data"),
    "detect": ("detect", "detect objects in images, folders or globs with a checkpoint"),
    "export": ("export", "write a checkpoint as ONNX (model.onnx beside the weights)"),
    "bench": ("bench", "time a YOLO-ResNet18 training step and the data loader"),
    "gradcheck": ("gradcheck", "numeric gradient checks (float64 central differences) of every op"),
    "graph": ("graph",
              "the computation graph of a model's forward as Graphviz DOT (SVG/PNG with `dot`)"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinygrad-yolo", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"tinygrad-yolo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        # Commands import their heavy parts (models, data) inside run(), so --help stays fast.
        modules[name] = importlib.import_module(f"tinygrad_yolo.commands.{module}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text,
                                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        modules[name].add_arguments(command_parser)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc` starts it again
    from .memory import keep_freed_memory
    keep_freed_memory()  # a step's arrays are recycled instead of faulted in anew (see memory.py)
    try:
        return modules[args.command].run(args) or 0
    except KeyboardInterrupt:
        print(f"tinygrad-yolo {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        quiet = getattr(e, "reported_elsewhere", False)  # data-parallel: another rank prints it
        if not quiet and not isinstance(e, user_errors()):
            raise  # a bug: the traceback is what we need to fix it
        if not quiet:
            message = " ".join(str(e).split())  # one line, whatever the message held
            print(f"tinygrad-yolo {args.command}: error: {message}", file=sys.stderr)
        from .distributed import leave_together, world
        leave_together(e, world(), 2)
        return 2


if __name__ == "__main__":
    sys.exit(main())
