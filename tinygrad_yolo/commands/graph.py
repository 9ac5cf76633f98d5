"""`tinygrad-yolo graph`: the computation graph of one forward pass as Graphviz DOT.

Runs the model once on a random batch, writes ``tg.viz.to_dot`` of the output
(ops as ellipses with their kernel, stride and padding; tensors as boxes with shape and
dtype, parameters by name) and, when Graphviz's ``dot`` program is installed, renders it
to SVG or PNG. ``--grad`` runs a backward too, recorded with ``tg.viz.record()``: every
tensor then shows its gradient (signed values for small ones, the norm for all), and where
one tensor feeds two ops (a block's input: the branch and the shortcut) each edge shows the
part of the gradient that came back along it.
"""
import os
import shutil
import subprocess
import sys

from . import UserError

MODELS = ("basic_block", "bottleneck", "resnet20", "resnet56", "plain20", "plain56", "resnet18",
          "resnet34")
# Input side used when --input-size is not given: small enough to build the graph instantly.
DEFAULT_INPUT = {"basic_block": 8, "bottleneck": 8, "resnet18": 64, "resnet34": 64}
INSTALL_HINT = ("Graphviz's `dot` program is not installed, so only the DOT file was written. "
                "Install it (Debian/Ubuntu: `sudo apt-get install graphviz`, "
                "macOS: `brew install graphviz`) and rerun, or render by hand: "
                "dot -Tsvg {dot} -o {svg}")


def add_arguments(parser):
    parser.add_argument("--model", default="basic_block", choices=MODELS,
                        help="what to draw (default: one BasicBlock)")
    parser.add_argument("--shortcut", default=None, choices=["A", "B"],
                        help="A: zero-pad identity, B: 1x1 conv projection (default: B for blocks "
                             "and ImageNet ResNets, A for the CIFAR nets); only a block that "
                             "changes shape has one")
    parser.add_argument("--in-channels", type=int, default=16, help="blocks only (default 16)")
    parser.add_argument("--out-channels", type=int, default=32,
                        help="blocks only (default 32; a Bottleneck outputs 4x this)")
    parser.add_argument("--stride", type=int, default=2,
                        help="blocks only (default 2: the shortcut is drawn)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="input height = width (default: 8 for blocks, 32 for CIFAR nets, "
                             "64 for ResNet-18/34)")
    parser.add_argument("--batch", type=int, default=2,
                        help="batch size of the random input (default 2)")
    parser.add_argument("--grad", "--grad-norms", dest="grad", action="store_true",
                        help="run a backward too (of a fixed random projection of the output) and "
                             "write the gradient on every tensor, intermediates included")
    parser.add_argument("--max-values", type=int, default=8,
                        help="tensors with at most this many elements show their values and signed "
                             "gradients (default 8; try --in-channels 1 --out-channels 1 "
                             "--input-size 2)")
    parser.add_argument("--out", default="graph.dot",
                        help="the DOT file to write (default graph.dot)")
    parser.add_argument("--format", default="svg", choices=["svg", "png"],
                        help="what `dot` renders next to the DOT file (default svg)")
    parser.add_argument("--no-render", action="store_true", help="write the DOT file only")


def build_model(args):
    """(model, input channels) for --model and its options."""
    from .. import models

    if args.model in ("basic_block", "bottleneck"):
        if min(args.in_channels, args.out_channels, args.stride) < 1:
            raise UserError("--in-channels, --out-channels and --stride must be at least 1")
        block = models.BasicBlock if args.model == "basic_block" else models.Bottleneck
        shortcut = args.shortcut or "B"
        try:
            model = block(args.in_channels, args.out_channels, args.stride, shortcut=shortcut)
            return model, args.in_channels
        except ValueError as e:  # e.g. shortcut A asked to remove channels
            raise UserError(str(e)) from None
    kwargs = {} if args.shortcut is None else {"shortcut": args.shortcut}
    return getattr(models, args.model)(**kwargs), 3


def name_module_outputs(model):
    """{name: output} filled in by the forward: each submodule's output under its attribute path
    (``bn1 output``, ``downsample.0 output``; a module used twice, like a block's ReLU, gets
    ``(use 2)`` on its second output), so the graph names the intermediate tensors too."""
    outputs = {}

    def keep(name):
        def hook(module, inputs, output):
            key, n = f"{name} output", 1
            while key in outputs:
                n += 1
                key = f"{name} output (use {n})"
            outputs[key] = output
        return hook
    for name, module in model.named_modules():
        if name:
            module.register_forward_hook(keep(name))
    return outputs


def forward_graph(args):
    """Build the model, run it on a random batch; return (DOT text, number of ops)."""
    import numpy as np

    import tinygrad_yolo as tg

    if args.batch < 1:
        raise UserError("--batch must be at least 1")
    size = DEFAULT_INPUT.get(args.model, 32) if args.input_size is None else args.input_size
    if size < 1:
        raise UserError("--input-size must be at least 1")
    tg.seed(0)
    model, channels = build_model(args)
    rng = np.random.default_rng(0)
    # requires_grad on the input too, so ops applied to it alone (shortcut A: slice, pad) are
    # recorded
    x = tg.Tensor(rng.standard_normal((args.batch, channels, size, size)).astype(np.float32),
                  requires_grad=True)
    if args.max_values < 0:
        raise UserError("--max-values must be at least 0")
    rec = tg.viz.record(max_values=args.max_values)
    outputs = name_module_outputs(model)
    try:
        with rec:
            out = model(x)
            if args.grad:  # L = sum(v * out) for a fixed random v: dL/d(out) = v
                v = tg.Tensor(rng.standard_normal(out.shape).astype(np.float32))
                (out * v).sum().backward()
    except ValueError as e:  # too small an input for the strides, typically
        raise UserError(f"{args.model} on input {tuple(x.shape)}: {e}") from None
    names = dict(outputs)  # every submodule's output, by the submodule's name
    names.update(model.named_parameters())
    names["input"] = x
    passes = "forward and backward" if args.grad else "forward"
    title = f"{args.model} {passes}, input {tuple(x.shape)}"
    dot = tg.viz.to_dot(out, names, title=title, record=rec, max_values=args.max_values)
    return dot, dot.count("shape=ellipse")


def run(args):
    out = os.path.abspath(args.out)
    folder = os.path.dirname(out)
    if not os.path.isdir(folder):
        raise UserError(f"folder {folder} for --out does not exist")
    dot_text, n_ops = forward_graph(args)
    with open(out, "w", encoding="utf-8") as f:
        f.write(dot_text)
    print(f"wrote {args.out}: {n_ops} ops")
    if not args.no_render:
        render(args.out, args.format)
    return 0


def render(path, fmt="svg"):
    """Render the DOT file ``path`` beside itself as ``fmt`` with Graphviz's `dot`, or say how
    to install it (shared with `tinygrad-yolo demo --dot`)."""
    rendered = os.path.splitext(os.path.abspath(path))[0] + "." + fmt
    dot = shutil.which("dot")
    if dot is None:
        svg = os.path.splitext(path)[0] + ".svg"
        print(INSTALL_HINT.format(dot=path, svg=svg), file=sys.stderr)
        return None
    result = subprocess.run([dot, f"-T{fmt}", os.path.abspath(path), "-o", rendered],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"dot failed to render {path}: {result.stderr.strip()}")
    print(f"rendered {os.path.relpath(rendered)}")
    return rendered
