"""Looking at the graph and the gradients: a recording of one forward and backward
(every op's output, the gradient it received and the ones it sent on), Graphviz DOT of
the graph, a per-layer gradient-flow probe, and plots (matplotlib, drawn off-screen).

    with tg.viz.record() as rec:
        y = (x * w).relu().sum()
        y.backward()
    print(rec.trace({"x": x, "w": w}))        # backward() step by step, with the numbers
    dot = tg.viz.to_dot(y, {"x": x, "w": w}, record=rec)
"""
import numpy as np

from .backend import to_numpy
from .debug import Observer


# ---- recording a forward and a backward ---------------------------------------------------
def _pair(v):
    """An (h, w) setting as people write it: (2, 2) -> '2', (2, 1) -> '2x1', 1 -> '1'."""
    is_int = lambda a: isinstance(a, (int, np.integer))  # noqa: E731
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(is_int(a) for a in v):
        return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"
    return str(v)


# Settings an op was made with (its constructor's arguments): what to_dot writes under the
# op's name. The Function object holds them until a backward frees it.
_SETTINGS = {
    "Conv2d": (("stride", "stride"), ("padding", "padding"), ("dilation", "dilation")),
    "AdaptiveAvgPool2d": (("output_size", "output size"),),
    "Sum": (("axis", "axis"), ("keepdims", "keepdims")),
    "Mean": (("axis", "axis"), ("keepdims", "keepdims")),
    "Max": (("axis", "axis"), ("keepdims", "keepdims")),
    "Softmax": (("axis", "axis"),), "LogSoftmax": (("axis", "axis"),),
    "Concatenate": (("axis", "axis"),), "Stack": (("axis", "axis"),),
    "Reshape": (("shape", "to"),), "Transpose": (("axes", "axes"),), "Pow": (("p", "exponent"),),
    "LeakyReLU": (("slope", "slope"),), "Clip": (("lo", "min"), ("hi", "max")),
    "Pad": (("pad_width", "pad"),),
    "BatchNorm": (("training", "training"), ("eps", "eps"), ("momentum", "momentum")),
    "Cast": (("dtype", "to"),), "ToDevice": (("device", "to"),),
    "CrossEntropy": (("reduction", "reduction"),),
}
_PAIRS = ("stride", "padding", "dilation")  # (h, w) settings, written 2 or 2x1


def op_settings(fn):
    """The op's settings as one short line, e.g. 'kernel 3x3, stride 2, padding 1' for a
    convolution; '' when it has none (or was freed by a backward)."""
    d, kind = fn.__dict__, fn.name  # the op's name, whichever implementation (dispatch.py) ran
    parts = []
    if kind == "Conv2d" and "input_meta" in d:
        R, S = d["input_meta"][1][0][2:]
        parts.append(f"kernel {R}x{S}")
    if kind in ("MaxPool2d", "AvgPool2d") and "args" in d:
        kernel, stride, padding = d["args"]
        kernel = (kernel, kernel) if isinstance(kernel, (int, np.integer)) else tuple(kernel)
        parts += [f"kernel {kernel[0]}x{kernel[1]}",
                  f"stride {_pair(kernel if stride is None else stride)}",
                  f"padding {_pair(padding)}"]
    for attr, label in _SETTINGS.get(kind, ()):
        value = d.get(attr)
        default = (value is None or (attr == "keepdims" and not value)
                   or (attr == "dilation" and _pair(value) == "1"))
        if default:
            continue  # the defaults nobody needs to read
        parts.append(f"{label} {_pair(value) if attr in _PAIRS else value}")
    return ", ".join(parts)


class Recording(Observer):
    """What one forward and one backward did, op by op (``with tg.viz.record() as rec:``).

    For every op recorded in the graph: its name and settings, its inputs' graph nodes, and
    its output's values (only for outputs of at most ``max_values`` elements, so recording
    a real network stays cheap). For every op the backward visited, in visiting order: the
    gradient of its output (complete when the op is visited) and the gradient it sent to each
    input, summed back to that input's shape as the engine does.

    A recording holds on to the ops it saw (and so to their saved arrays): use it for
    studying small graphs, not inside a training loop.
    """

    def __init__(self, max_values=64):
        self.max_values = max_values
        self.ops = []      # recorded ops in forward order (held, so their ids stay unique)
        self.info = {}     # id(op) -> {"name", "settings", "parents", "meta", "value", "constants"}
        self.visits = []   # ops in the order backward() visited them
        self.out_grad = {}  # id(op) -> gradient of the op's output
        self.sent = {}     # id(op) -> per input, the gradient sent to it (None where none)

    def after_forward(self, fn, inputs, out):
        if out._ctx is None:  # nothing recorded: no input needed a gradient
            return
        self.ops.append(fn)
        def small(t):
            return to_numpy(t.data).copy() if t.size <= self.max_values else None

        self.info[id(fn)] = {
            "name": fn.name, "settings": op_settings(fn), "parents": list(fn.parents),
            "meta": list(fn.input_meta), "value": small(out),
            # inputs outside the graph (constants) are seen only here
            "constants": [small(t) if p is None else None for t, p in zip(inputs, fn.parents)]}

    def before_backward(self, fn, grad):
        self.visits.append(fn)
        self.out_grad[id(fn)] = to_numpy(grad).copy()

    def after_backward(self, fn, grads):
        from .tensor import sum_to  # the engine's own rule for undoing broadcasting
        sent = []
        for parent, (shape, dtype), g in zip(fn.parents, fn.input_meta, grads):
            if g is None or parent is None:
                sent.append(None)
                continue
            g = to_numpy(g)
            sent.append(np.array(sum_to(g, shape) if g.shape != tuple(shape) else g, dtype=dtype))
        self.sent[id(fn)] = sent

    # ---- reading it back --------------------------------------------------------------
    def value(self, t):
        """The values of tensor ``t`` (a leaf, or an op's output kept because it was small)."""
        if t._ctx is None or id(t._ctx) not in self.info:
            return to_numpy(t.data)
        return self.info[id(t._ctx)]["value"]

    def contributions(self, node):
        """[(op, input index, gradient)] sent to graph node ``node`` (a leaf tensor or an op),
        in the order backward() sent them."""
        out = []
        for fn in self.visits:
            for i, (parent, g) in enumerate(zip(self.info.get(id(fn), {}).get("parents", []),
                                                self.sent.get(id(fn), []))):
                if parent is node and g is not None:
                    out.append((fn, i, g))
        return out

    def grad(self, t):
        """The gradient backward() computed for tensor ``t``: an op's output gets what its op
        received; a leaf the sum of what was sent to it. None if no gradient reached it."""
        if t._ctx is not None:
            return self.out_grad.get(id(t._ctx))
        parts = [g for _, _, g in self.contributions(t)]
        return None if not parts else sum(parts[1:], parts[0].copy())

    def trace(self, names=None, precision=4):
        """backward() step by step: each op in the order it was visited, the gradient of its
        output, and what it sent to each input (with the running sum where a tensor receives
        more than one contribution). ``names``: {name: tensor} for leaves and intermediates."""
        label = _Namer(names, self)
        fmt = lambda a: format_array(a, precision, one_line=True)  # noqa: E731
        running = {}
        lines = []
        for step, fn in enumerate(self.visits, 1):
            info = self.info.get(id(fn))
            if info is None:
                continue
            lines.append(f"{step}. {label.op(fn)}: gradient of {label.output(fn)} = "
                         f"{fmt(self.out_grad[id(fn)])}")
            for parent, g in zip(info["parents"], self.sent.get(id(fn), [])):
                if parent is None or g is None:
                    continue
                line = f"     -> {label.node(parent)} += {fmt(g)}"
                if id(parent) in running:
                    running[id(parent)] = running[id(parent)] + g
                    line += f"   (now {fmt(running[id(parent)])})"
                else:
                    running[id(parent)] = g.copy()
                lines.append(line)
        return "\n".join(lines)


class _Namer:
    """Names for the trace: the user's names for tensors, else the op's type and number."""

    def __init__(self, names, rec):
        from .tensor import Tensor
        items = names.items() if isinstance(names, dict) else (names or [])
        self.names = {}
        for name, t in items:
            if isinstance(t, Tensor):  # an intermediate is known by the op that made it
                self.names[id(t._ctx) if t._ctx is not None else id(t)] = name
        counts, self.numbered = {}, {}
        for fn in rec.ops:
            counts[fn.name] = counts.get(fn.name, 0) + 1
            self.numbered[id(fn)] = (fn.name, counts[fn.name])
        self.totals = counts

    def op(self, fn):
        name, k = self.numbered.get(id(fn), (fn.name, 1))
        return name if self.totals.get(name, 1) == 1 else f"{name}#{k}"

    def output(self, fn):
        return self.names.get(id(fn), f"the output of {self.op(fn)}")

    def node(self, node):
        from .tensor import Tensor
        if isinstance(node, Tensor):
            return self.names.get(id(node), f"a leaf {tuple(node.shape)}")
        return self.names.get(id(node), f"the output of {self.op(node)}")


def record(max_values=64):
    """``with tg.viz.record() as rec:`` records the ops run inside and the backward through
    them (see Recording): ``rec.trace()``, ``rec.grad(t)``, ``to_dot(y, record=rec)``."""
    return Recording(max_values=max_values)


def format_array(a, precision=3, one_line=False):
    """``a`` as short text: ``precision`` significant digits, arrays of more than two axes
    flattened; ``one_line`` for a trace line instead of a DOT label's wrapped rows."""
    a = np.asarray(a) + 0.0  # + 0.0 turns -0.0 into 0.0
    if a.ndim > 2:  # row-major on one line; the shape is written beside it
        a = a.reshape(-1)
    if a.ndim == 0:
        return f"{float(a):.{precision}g}"
    text = np.array2string(a, max_line_width=60 if not one_line else 10 ** 6, separator=" ",
                           formatter={"float_kind": lambda v: f"{v:.{precision}g}"})
    return " ".join(text.split()) if one_line else text


# ---- the graph as Graphviz DOT --------------------------------------------------------------
def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _tensor_label(shape, dtype, name=None, grad=None, value=None, max_values=8):
    """Name, shape and dtype; the values and the signed gradient when the tensor is small;
    the gradient's norm whenever there is one."""
    parts = [name] if name else []
    parts.append(f"{tuple(shape)} {dtype}")
    small = int(np.prod(shape)) <= max_values
    if value is not None and small:
        parts.append(f"data {format_array(value)}")
    if grad is not None:
        if small:
            parts.append(f"grad {format_array(grad)}")
        parts.append(f"|grad| = {float(np.linalg.norm(grad)):.3g}")
    return "\n".join(parts)


def to_dot(tensor, params=None, grad_norms=False, title=None, record=None, max_values=8):
    """The computation graph behind ``tensor`` as Graphviz DOT text.

    Ellipses are ops, with their settings (kernel, stride, padding, axis, ...); boxes are
    tensors: the output, each op's result, and the leaves (light blue, named from
    ``params``, a dict or ``model.named_parameters()``; grey where no gradient flows).
    A tensor of at most ``max_values`` elements shows its values and its signed gradient.

    Gradients come from ``record`` (``with tg.viz.record() as rec:`` around the forward and
    the backward): every tensor gets the gradient backward() computed for it, and where a
    tensor feeds more than one op each edge carries the gradient that op sent back (they
    add up to the tensor's). Without a record, ``grad_norms=True`` writes the gradient of
    the leaves (and of intermediates kept with retain_grad()); call backward(retain_graph=True)
    first so the graph still exists.
    """
    dot = _DotGraph(params, grad_norms, record, max_values)
    if title:
        dot.lines.append(f'  labelloc="t"; label="{_escape(title)}";')
    if record is not None or grad_norms:
        dot.lines.append(f'  legend [shape=note, fontsize=9, label="{_escape(GRADIENT_LEGEND)}"];')
    dot.draw_root(tensor)
    if tensor._ctx is not None:
        dot.draw_edges(dot.draw_ops(tensor))
    dot.lines.append("}")
    return "\n".join(dot.lines) + "\n"


GRADIENT_LEGEND = (
    "|grad|, |g|: the L2 norm of a gradient array, sqrt(sum of its squares)\n"
    "grad part: what one op sent back along that edge; a tensor that feeds several ops\n"
    "gets the sum of its parts, added element by element as arrays (vectors), so\n"
    "the norms of the parts need not add up to its |grad|: |a + b| <= |a| + |b|")


class _DotGraph:
    """The DOT text of one graph as it is written, and where its values and gradients come
    from: the recording when there is one, else the live graph and the tensors' ``.grad``."""

    def __init__(self, params, grad_norms, record, max_values):
        items = params.items() if isinstance(params, dict) else (params or [])
        self.names = {id(p): n for n, p in items}                                # leaves
        self.op_names = {id(p._ctx): n for n, p in items if p._ctx is not None}  # by their op
        self.grad_norms, self.record, self.max_values = grad_norms, record, max_values
        self.lines = ["digraph G {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];',
                      '  edge [fontname="Helvetica", fontsize=8];']
        self.drawn = set()

    def box(self, key, label, color):
        if key not in self.drawn:
            self.drawn.add(key)
            self.lines.append(f'  {key} [shape=box, style=filled, fillcolor={color}, '
                              f'label="{_escape(label)}"];')

    def leaf_grad(self, t):
        if self.record is not None:
            return self.record.grad(t)
        return to_numpy(t.grad.data) if self.grad_norms and t.grad is not None else None

    def op_grad(self, fn):
        """The gradient of the tensor op ``fn`` made."""
        if self.record is not None:
            return self.record.out_grad.get(id(fn))
        retained = fn._retained() if fn._retained is not None else None
        if self.grad_norms and retained is not None and retained.grad is not None:
            return to_numpy(retained.grad.data)
        return None

    def op_value(self, fn):
        record = self.record
        if record is None or id(fn) not in record.info:
            return None
        return record.info[id(fn)]["value"]

    def structure(self, fn):
        """(parents, input_meta, settings, constants): from the record once backward freed
        the op; None when it was freed and not recorded."""
        if self.record is not None and id(fn) in self.record.info:
            info = self.record.info[id(fn)]
            return info["parents"], info["meta"], info["settings"], info["constants"]
        if fn.freed:
            return None
        return fn.parents, fn.input_meta, op_settings(fn), [None] * len(fn.parents)

    def draw_root(self, tensor):
        leaf = tensor._ctx is None
        grad = self.leaf_grad(tensor) if leaf else self.op_grad(tensor._ctx)
        name = self.names.get(id(tensor)) if leaf else self.op_names.get(id(tensor._ctx))
        color = ("lightblue" if tensor.requires_grad else "lightgrey") if leaf else "white"
        self.box(f"t{id(tensor)}", _tensor_label(tensor.shape, tensor.dtype, name, grad,
                                                 to_numpy(tensor.data), self.max_values), color)

    def draw_ops(self, tensor):
        """Every op behind ``tensor`` and the boxes of its inputs; returns the edges from the
        inputs to the ops: [(tensor box, op, gradient sent along the edge or None, node)]."""
        # The graph holds ops and leaves, not intermediate tensors: an op's result is drawn
        # from what its consumer recorded about it (shape, dtype), its values from the record.
        out_box, seen, stack = {id(tensor._ctx): f"t{id(tensor)}"}, set(), [tensor._ctx]
        edges = []
        while stack:  # iterative, like backward(): deep graphs don't hit the recursion limit
            fn = stack.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            found = self.structure(fn)
            if found is None:
                self.lines.append(f'  f{id(fn)} [label="{type(fn).__name__} (freed)", '
                                  f'style=dashed];')
            else:
                edges += self.draw_op(fn, *found, out_box, stack)
            self.lines.append(f"  f{id(fn)} -> {out_box.setdefault(id(fn), f'tf{id(fn)}')};")
        return edges

    def draw_op(self, fn, parents, meta, settings, constants, out_box, stack):
        """The ellipse of ``fn`` and a box per input; ops not yet drawn go on ``stack``."""
        from .tensor import Tensor

        label = fn.name + (f"\n{settings}" if settings else "")
        self.lines.append(f'  f{id(fn)} [label="{_escape(label)}", shape=ellipse, style=filled, '
                          f'fillcolor=khaki];')
        sent = self.record.sent.get(id(fn), []) if self.record is not None else []
        edges, max_values = [], self.max_values
        for i, (p, (shape, dtype)) in enumerate(zip(parents, meta)):
            if p is None:  # a constant, or a tensor that needs no gradient
                key = f"c{id(fn)}_{i}"
                self.box(key, _tensor_label(shape, dtype, "constant (no gradient)",
                                            value=constants[i], max_values=max_values),
                         "lightgrey")
            elif isinstance(p, Tensor):  # a leaf
                key = f"t{id(p)}"
                self.box(key, _tensor_label(shape, dtype, self.names.get(id(p)), self.leaf_grad(p),
                                            to_numpy(p.data), max_values), "lightblue")
            else:  # another op's result
                key = out_box.setdefault(id(p), f"tf{id(p)}")
                self.box(key, _tensor_label(shape, dtype, self.op_names.get(id(p)), self.op_grad(p),
                                            self.op_value(p), max_values), "white")
                stack.append(p)
            edges.append((key, fn, sent[i] if i < len(sent) else None, p))
        return edges

    def draw_edges(self, edges):
        # Where a tensor feeds several ops (or one op twice), its gradient is the sum of what
        # each sends back: label those edges with their part.
        uses = {}
        for key, *_ in edges:
            uses[key] = uses.get(key, 0) + 1
        for key, fn, g, _ in edges:
            if g is not None and uses[key] > 1:
                part = (format_array(g) if g.size <= self.max_values
                        else f"|g| = {float(np.linalg.norm(g)):.3g}")
                self.lines.append(f'  {key} -> f{id(fn)} [label="{_escape("grad part " + part)}"];')
            else:
                self.lines.append(f"  {key} -> f{id(fn)};")


def gradient_flow(model):
    """[(parameter name, |grad|, |weight|)] after a backward, in model order."""
    rows = []
    for name, p in model.named_parameters():
        g = 0.0 if p.grad is None else float(np.linalg.norm(to_numpy(p.grad.data)))
        rows.append((name, g, float(np.linalg.norm(to_numpy(p.data)))))
    return rows


def format_gradient_flow(rows):
    width = max([len(r[0]) for r in rows] + [9])
    lines = [f"{'parameter':<{width}}  {'|grad|':>10}  {'|weight|':>10}"]
    lines += [f"{name:<{width}}  {g:>10.3e}  {w:>10.3e}" for name, g, w in rows]
    return "\n".join(lines)


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only: works on machines without a display
    import matplotlib.pyplot as plt
    return plt


def plot_gradient_flow(rows, path, title="gradient norm per parameter"):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(rows)), 4))
    ax.bar(range(len(rows)), [max(r[1], 1e-30) for r in rows], color="tab:blue")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r[0] for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel("|grad|")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(curves, path, xlabel="step", ylabel="loss", title=None, logy=False):
    """``curves``: {label: sequence of values or (xs, ys)} -> a PNG line plot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for label, values in curves.items():
        xs, ys = values if isinstance(values, tuple) else (range(len(values)), values)
        ax.plot(list(xs), list(ys), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _palette(k):
    hue = (k * 0.618033988749895) % 1.0  # golden-ratio hues: neighbours look different
    import colorsys
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def draw_detections(image, detections=None, class_names=None, truth=None, width=None):
    """A copy of ``image`` (PIL or HWC uint8) with boxes drawn.

    ``detections``: (K, 6) [x1, y1, x2, y2, score, class], normalised to [0, 1];
    ``truth``: (M, 5) [x1, y1, x2, y2, class], drawn white underneath.
    Lines and labels grow with the image, so they stay readable on a large photo.
    """
    from PIL import Image, ImageDraw
    if isinstance(image, Image.Image):
        img = image.copy()
    else:
        img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    img = img.convert("RGB")
    draw = ImageDraw.Draw(img)
    W, H = img.size
    side = min(W, H)
    width = width or max(2, round(side / 250))
    font = _font(max(10, round(side / 45)))

    def name(c):
        c = int(c)
        return class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)

    truth = np.zeros((0, 5)) if truth is None else np.asarray(truth, dtype=float)
    for x1, y1, x2, y2, c in truth:
        draw.rectangle([x1 * W, y1 * H, x2 * W, y2 * H], outline=(255, 255, 255),
                       width=max(1, width // 2))
    detections = np.zeros((0, 6)) if detections is None else np.asarray(detections, float)
    for x1, y1, x2, y2, score, c in detections:  # every box first, so no box crosses a label
        draw.rectangle([x1 * W, y1 * H, x2 * W, y2 * H], outline=_palette(int(c)), width=width)
    placed = []
    for x1, y1, x2, y2, score, c in detections:
        label = f"{name(c)} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tw, th = right - left + 4, bottom - top + 4
        tx = min(max(0, x1 * W), max(0, W - tw))
        # above the box, below it, inside at the top: the first place no earlier label holds
        spots = ([ty for ty in (y1 * H - th, y2 * H, y1 * H) if 0 <= ty <= H - th]
                 or [max(0, min(y1 * H, H - th))])
        free = (ty for ty in spots
                if not any(_overlap((tx, ty, tx + tw, ty + th), r) for r in placed))
        ty = next(free, spots[0])
        placed.append((tx, ty, tx + tw, ty + th))
        draw.rectangle(placed[-1], fill=_palette(int(c)))
        draw.text((tx + 2 - left, ty + 2 - top), label, fill=(0, 0, 0), font=font)
    return img


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
