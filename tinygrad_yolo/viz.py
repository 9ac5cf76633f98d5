"""Looking at the graph and the gradients: Graphviz DOT of a computation graph,
a per-layer gradient-flow probe, and plots (matplotlib, drawn off-screen)."""
import numpy as np

from .backend import to_numpy


def _tensor_label(shape, dtype, name=None, grad=None):
    parts = [name] if name else []
    parts.append(f"{tuple(shape)} {dtype}")
    if grad is not None:
        parts.append(f"|grad| = {float(np.linalg.norm(to_numpy(grad.data))):.3g}")
    return "\\n".join(parts)


def to_dot(tensor, params=None, grad_norms=False, title=None):
    """The computation graph behind ``tensor`` as Graphviz DOT text.

    Ellipses are ops; boxes are tensors (shape, dtype): the output, each op's result, and
    the leaves (light blue, named from ``params``, a dict or ``model.named_parameters()``;
    grey where no gradient flows). ``grad_norms=True`` writes |grad| on tensors that have
    one — call backward(retain_graph=True) first so the graph still exists, and
    retain_grad() on intermediates you want to see.
    """
    from .tensor import Tensor

    names = {id(p): n for n, p in (params.items() if isinstance(params, dict) else (params or []))}
    lines = ["digraph G {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    if title:
        lines.append(f'  labelloc="t"; label="{title}";')
    drawn = set()

    def box(key, label, color):
        if key not in drawn:
            drawn.add(key)
            lines.append(f'  {key} [shape=box, style=filled, fillcolor={color}, label="{label}"];')

    def grad_of(t):
        return t.grad if grad_norms and t is not None else None

    leaf_color = "lightblue" if tensor.requires_grad else "lightgrey"
    box(f"t{id(tensor)}", _tensor_label(tensor.shape, tensor.dtype, names.get(id(tensor)), grad_of(tensor)),
        "white" if tensor._ctx is not None else leaf_color)
    if tensor._ctx is None:
        lines.append("}")
        return "\n".join(lines) + "\n"
    # The graph holds ops and leaves, not intermediate tensors: an op's result is drawn from
    # what its consumer recorded about it (shape, dtype), and its |grad| from retain_grad().
    out_box, seen, stack = {id(tensor._ctx): f"t{id(tensor)}"}, set(), [tensor._ctx]
    while stack:  # iterative, like backward(): deep graphs don't hit the recursion limit
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        if fn.freed:
            lines.append(f'  f{id(fn)} [label="{type(fn).__name__} (freed)", style=dashed];')
        else:
            lines.append(f'  f{id(fn)} [label="{fn.name}", shape=ellipse, style=filled, fillcolor=khaki];')
            for i, (p, (shape, dtype)) in enumerate(zip(fn.parents, fn.input_meta)):
                if p is None:  # a constant, or a tensor that needs no gradient
                    key = f"c{id(fn)}_{i}"
                    box(key, _tensor_label(shape, dtype), "lightgrey")
                elif isinstance(p, Tensor):  # a leaf
                    key = f"t{id(p)}"
                    box(key, _tensor_label(shape, dtype, names.get(id(p)), grad_of(p)), "lightblue")
                else:  # another op's result
                    key = out_box.setdefault(id(p), f"tf{id(p)}")
                    retained = p._retained() if p._retained is not None else None
                    box(key, _tensor_label(shape, dtype, grad=grad_of(retained)), "white")
                    stack.append(p)
                lines.append(f"  {key} -> f{id(fn)};")
        lines.append(f"  f{id(fn)} -> {out_box.setdefault(id(fn), f'tf{id(fn)}')};")
    lines.append("}")
    return "\n".join(lines) + "\n"


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
    img = image.copy() if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    img = img.convert("RGB")
    draw = ImageDraw.Draw(img)
    W, H = img.size
    side = min(W, H)
    width = width or max(2, round(side / 250))
    font = _font(max(10, round(side / 45)))

    def name(c):
        c = int(c)
        return class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)

    for x1, y1, x2, y2, c in (np.zeros((0, 5)) if truth is None else np.asarray(truth, dtype=float)):
        draw.rectangle([x1 * W, y1 * H, x2 * W, y2 * H], outline=(255, 255, 255), width=max(1, width // 2))
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
        spots = [ty for ty in (y1 * H - th, y2 * H, y1 * H) if 0 <= ty <= H - th] or [max(0, min(y1 * H, H - th))]
        ty = next((ty for ty in spots if not any(_overlap((tx, ty, tx + tw, ty + th), r) for r in placed)), spots[0])
        placed.append((tx, ty, tx + tw, ty + th))
        draw.rectangle(placed[-1], fill=_palette(int(c)))
        draw.text((tx + 2 - left, ty + 2 - top), label, fill=(0, 0, 0), font=font)
    return img


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
