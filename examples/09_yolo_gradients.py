"""Demo 9 - where the YOLOv1 loss sends its gradient: one image, the S x S grid, and which
predictor of a cell is responsible for its object, as training proceeds.

YOLOv1's output is S x S x (5B + C) numbers: per cell, B boxes (x, y, sqrt w, sqrt h,
confidence) and C class scores. The loss (tinygrad_yolo/detection/loss.py) switches its
terms on and off per cell and per predictor with the indicator 1^obj_ij:

  coord, size   lambda_coord (x - x^)^2 ... only for the responsible predictor of a cell
                that holds an object centre (the one whose box overlaps the object more;
                while neither overlaps it, the one nearer to it: darknet's rule);
  class         (p(c) - p^(c))^2 only in cells that hold an object;
  obj           (C - IoU)^2 for the responsible predictor;
  noobj         lambda_noobj C^2 for every other predictor: both of every empty cell and the
                other one of each object cell.

So backpropagating the loss of one image to the network's output gives a gradient with a
shape you can see: dL/d(x, y), dL/d(sqrt w, sqrt h) and dL/d(class) are exactly zero except in
the cells that hold an object centre, and dL/d(confidence) is non-zero everywhere, scaled by
lambda_noobj in the empty cells. The script checks each of these statements on the numbers
(and the gradient itself against central differences), then draws the four per-cell maps
over the image with its grid and the object centres, at initialisation and after training.

The second figure follows both predictors of each object cell through training (demo 6's
7x7 detector, demo_common.TinyDetector, trained with Adam on synthetic images that do not
include this one): their boxes, their IoU with the object, and which one is responsible.
At initialisation neither box overlaps its object much: where both IoUs are 0, the box nearer
to the object (the smaller RMSE, darknet's rule in YOLOv1Loss.assign) is responsible; once a
box overlaps, the IoU decides, and a predictor can take over an object from the other one.

--mine draws the gradient of YOUR loss instead: the YOLOv1 loss you wrote in step 8 of the
exercises (exercises/step8_yolo_loss.py, its assign and yolo_loss), used for the figures, the
checks and the training alike. Every statement above is then checked on your code.
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np

from demo_common import (PREDICTOR_COLORS, TinyDetector, crowded_image, draw_grid, finish,
                         object_cells, parse_args, pyplot, shape_images, tg, to_uint8_image)
from tinygrad_yolo import optim
from tinygrad_yolo.detection import YOLOv1Loss, encode_batch
from tinygrad_yolo.gradcheck import check_gradients

S, B, C = 7, 2, 20
IMG = 56  # TinyDetector's conv head: 8 px per cell
MAPS = (("x, y", (0, 1), "dL/d(x, y)"), ("sqrt w, sqrt h", (2, 3), "dL/d(sqrt w, sqrt h)"),
        ("confidence", (4,), "dL/d(confidence)"), ("class scores", None, "dL/d(class scores)"))


class StudentLoss:
    """Exercise step 8's loss behind YOLOv1Loss's interface (assign, compute, __call__)."""

    def __init__(self, lambda_coord=5.0, lambda_noobj=0.5):
        import sys
        from pathlib import Path
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's exercises/
        from exercises import load
        self.step8 = load("step8_yolo_loss")
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj

    def assign(self, pred, target):
        return self.step8.assign(np.asarray(pred, np.float64), target, S, B)

    def compute(self, pred, target, responsible, iou):
        return self.step8.yolo_loss(pred, np.asarray(target, np.float64), responsible, iou, S, B,
                                    C, self.lambda_coord, self.lambda_noobj)

    def __call__(self, pred, target):
        return self.compute(pred, target, *self.assign(pred.numpy(), target))


def the_loss(args):
    """YOLOv1Loss, or with --mine the loss of exercise step 8 (one line if it is not written)."""
    if not args.mine:
        return YOLOv1Loss(S=S, B=B, C=C)
    from exercises import ExerciseNotDone
    loss = StudentLoss()
    try:
        loss(tg.Tensor(np.zeros((1, S, S, B * 5 + C))), np.zeros((1, S, S, 5 + C)))
    except ExerciseNotDone as e:
        raise SystemExit(f"--mine: exercises/step8_yolo_loss.py is not written yet ({e})")
    print("--mine: the loss is yours, from exercises/step8_yolo_loss.py")
    return loss


def output_gradient(model, image, target, loss_fn):
    """The network's output for ``image`` (float64, as a leaf) and dL/d(output) of its loss."""
    model.eval()
    with tg.no_grad():
        out = model(tg.Tensor(image)).numpy().astype(np.float64)
    model.train()
    pred = tg.Tensor(out, requires_grad=True)
    total, parts = loss_fn(pred, target)
    total.backward()
    responsible, iou = loss_fn.assign(out, target)
    return out, pred.grad.numpy(), responsible, iou, parts


def cell_map(grad, channels):
    """Per cell, the norm of the gradient over ``channels`` of every predictor (None: the
    class scores)."""
    g = grad[0]
    if channels is None:
        return np.sqrt((g[..., B * 5:] ** 2).sum(axis=-1))
    boxes = g[..., :B * 5].reshape(S, S, B, 5)
    return np.sqrt((boxes[..., list(channels)] ** 2).sum(axis=(-1, -2)))


def largest(a):
    return float(np.abs(a).max())


def check(out, grad, target, responsible, iou, loss_fn):
    """The statements of the docstring, on the numbers: max deviations (0 = exact)."""
    N = out.shape[0]
    boxes = out[..., :B * 5].reshape(N, S, S, B, 5)
    gboxes = grad[..., :B * 5].reshape(N, S, S, B, 5)
    has = target[..., 4] > 0                                   # (N, S, S)
    empty = ~has
    other = has[..., None] & ~responsible                      # object cells' other predictor
    t_box = np.concatenate([target[..., :2], np.sqrt(target[..., 2:4])], axis=-1)[..., None, :]
    lc, ln = loss_fn.lambda_coord, loss_fn.lambda_noobj
    noobj = ~responsible
    conf, gconf = boxes[..., 4], gboxes[..., 4]
    return {
        # coordinates, sizes and classes: nothing outside the object cells
        "box_grad_outside_objects": largest(gboxes[empty][..., :4]),
        "class_grad_outside_objects": largest(grad[..., B * 5:][empty]),
        # ... and nothing for the predictor that is not responsible
        "box_grad_other_predictor": largest(gboxes[other][..., :4]) if other.any() else 0.0,
        # the non-zero ones are the formulas' derivatives (divided by the batch size N)
        "coord_formula": largest(gboxes[responsible][..., :4]
                                 - 2 * lc * (boxes[..., :4] - t_box)[responsible] / N),
        "obj_formula": largest(gconf[responsible] - 2 * (conf - iou)[responsible] / N),
        "noobj_formula": largest(gconf[noobj] - 2 * ln * conf[noobj] / N),
        "class_formula": largest(grad[..., B * 5:][has]
                                 - 2 * (out[..., B * 5:] - target[..., 5:])[has] / N),
        "conf_grad_nonzero_cells": int((np.abs(gboxes[..., 4]).sum(axis=-1) > 0).sum()),
        "box_grad_nonzero_cells": int((np.abs(gboxes[..., :4]).sum(axis=(-1, -2)) > 0).sum()),
        "object_cells": int(has.sum()),
    }


def numeric_check(out, target, responsible, iou, loss_fn):
    """backward() against central differences along random directions, the assignment held
    fixed (as in training: which predictor is responsible is a constant)."""
    pred = tg.Tensor(out.copy(), requires_grad=True)
    result = check_gradients(lambda p: loss_fn.compute(p, target, responsible, iou)[0], [pred],
                             max_elementwise=0,
                             n_directions=6)
    return {"ok": bool(result.ok), "max_rel_err": float(result.max_rel_err)}


def draw_maps(fig, grid_spec, row, image, boxes, grads, step, norms_max):
    """One row: the four per-cell gradient maps over the image."""
    from matplotlib.colors import LogNorm

    shown = to_uint8_image(image[0]).repeat(4, 0).repeat(4, 1)
    faded = (0.55 * shown + 0.45 * 255).astype(np.uint8)
    for col, (name, channels, label) in enumerate(MAPS):
        ax = fig.add_subplot(grid_spec[row, col])
        draw_grid(ax, faded, S, boxes)
        m = cell_map(grads, channels)
        H = shown.shape[0]
        im = ax.imshow(np.ma.masked_equal(m, 0.0), extent=(0, H, H, 0), cmap="magma_r", alpha=0.75,
                       norm=LogNorm(vmin=norms_max[col] * 1e-3, vmax=norms_max[col]),
                       interpolation="nearest")
        nonzero = int((m > 0).sum())
        if nonzero <= 8:  # few cells: write the values in
            for i, j in np.argwhere(m > 0):
                ax.text((j + 0.5) * H / S, (i + 0.5) * H / S, f"{m[i, j]:.2g}", ha="center",
                        va="center", fontsize=7.5, color="white", fontweight="bold")
        ax.set_title(f"{label}\nstep {step}: non-zero in {nonzero} of {S * S} cells", fontsize=8.5)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        bar.set_label(f"|{label}| per cell (L2 norm)", fontsize=7.5)


def main(argv=None):
    args = parse_args(__doc__, argv, add=lambda p: p.add_argument(
        "--mine", action="store_true", help="the loss you wrote in exercise step 8"))
    # training images, steps, batch; the steps at which the figure looks; how often to track
    if args.smoke:
        n_train, steps, batch, shots, every = 32, 8, 8, (0, 2, 4, 8), 2
    elif args.quick:
        n_train, steps, batch, shots, every = 256, 80, 16, (0, 10, 30, 80), 2
    else:
        n_train, steps, batch, shots, every = 2048, 500, 32, (0, 30, 150, 500), 5
    rng = np.random.default_rng(args.seed)
    image, boxes, labels = crowded_image(args.seed, IMG, S=S, C=C)
    target = encode_batch([boxes], [labels], S=S, C=C)[0].astype(np.float64)
    cells = object_cells(target[0])
    images, all_boxes, all_labels = shape_images(n_train, IMG, rng, max_objects=4, min_size=0.15,
                                                 max_size=0.5)
    train_target, _ = encode_batch(all_boxes, all_labels, S=S, C=C)
    loss_fn = the_loss(args)
    print(f"one image, {len(boxes)} objects in cells {cells}; output {S}x{S}x{B * 5 + C}; the "
          f"detector trains on {n_train} other images, {steps} Adam steps of batch {batch}")

    tg.seed(args.seed)
    model = TinyDetector(S, B, C, img_size=IMG, head="conv")
    opt = optim.Adam(model.parameters(), lr=1e-3)
    order = np.random.default_rng(args.seed)
    results = {"cells": cells, "steps": steps, "shots": list(shots)}
    snapshots, track = {}, {"step": [], "iou": [], "responsible": []}
    for step in range(steps + 1):
        if step % every == 0 or step in shots:
            out, grad, responsible, iou, parts = output_gradient(model, image, target, loss_fn)
            track["step"].append(step)
            track["iou"].append([iou[0, i, j].tolist() for i, j in cells])
            track["responsible"].append([int(np.argmax(responsible[0, i, j])) for i, j in cells])
            if step in shots:
                snapshots[step] = (out, grad, responsible, iou)
                results[f"step_{step}"] = check_shot(step, snapshots[step], target, parts, loss_fn,
                                                     cells, track)
        if step == steps:
            break
        idx = order.integers(0, n_train, batch)
        loss, _ = loss_fn(model(tg.Tensor(images[idx])), train_target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    results["track"] = track
    count_switches(track, cells, every, results)
    maps_path = draw_gradient_maps(args.out / "09_yolo_gradients.png", image, boxes, snapshots,
                                   shots, loss_fn.lambda_noobj)
    track_path = draw_predictors(args.out / "09_yolo_predictors.png", image, boxes, cells,
                                 snapshots, shots, results)
    return finish(args, results, [maps_path, track_path], "09_yolo_gradients")


def check_shot(step, snapshot, target, parts, loss_fn, cells, track):
    """At a snapshot: the docstring's statements checked on the numbers, printed; returns the
    checks."""
    out, grad, responsible, iou = snapshot
    checks = check(out, grad, target, responsible, iou, loss_fn)
    checks["numeric"] = numeric_check(out, target, responsible, iou, loss_fn)
    checks["loss_parts"] = parts
    outside = max(checks["box_grad_outside_objects"], checks["class_grad_outside_objects"])
    print(f"step {step}: loss {sum(parts.values()):.3f} ("
          + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()) + ")")
    print(f"  non-zero dL/d(box) in {checks['box_grad_nonzero_cells']} cells, dL/d(conf) in "
          f"{checks['conf_grad_nonzero_cells']} of {S * S}; max |dL/d(box, class)| outside the "
          f"{checks['object_cells']} object cells = {outside:.1e}, "
          f"for the other predictor = {checks['box_grad_other_predictor']:.1e}")
    print(f"  formulas vs backward(): coord/size {checks['coord_formula']:.1e}, "
          f"obj {checks['obj_formula']:.1e},"
          f" noobj {checks['noobj_formula']:.1e}, class {checks['class_formula']:.1e}; central "
          f"differences: {'agree' if checks['numeric']['ok'] else 'DISAGREE'} "
          f"(max rel err {checks['numeric']['max_rel_err']:.1e})")
    for (i, j), ious, r in zip(cells, track["iou"][-1], track["responsible"][-1]):
        print(f"  cell ({i}, {j}): IoU predictor 1 {ious[0]:.3f}, predictor 2 {ious[1]:.3f} -> "
              f"predictor {r + 1} is responsible")
    return checks


def confidence_line(out, responsible, i, j):
    """'cell (i, j): conf 1 0.06, 2 0.07 *' for one object cell, * = responsible, no '-0.00'."""
    conf = out[i, j, :B * 5].reshape(B, 5)[:, 4]
    return f"cell ({i}, {j}) conf " + ", ".join(
        f"{b + 1}: {np.round(conf[b], 2) + 0.0:5.2f}{'*' if responsible[i, j, b] else ' '}"
        for b in range(B))


def count_switches(track, cells, every, results):
    """Changes of the responsible predictor, and how many of them came while both IoUs were 0
    (no overlap yet: then the RMSE decides, darknet's rule in YOLOv1Loss.assign, not the IoU)."""
    resp, ious = np.array(track["responsible"]), np.array(track["iou"])
    changed = resp[1:] != resp[:-1]                     # (tracked steps - 1, objects)
    tied = ious[1:].max(axis=-1) == 0
    switches, tie_switches = changed.sum(axis=0).tolist(), (changed & tied).sum(axis=0).tolist()
    results.update(switches=switches, tie_switches=tie_switches)
    for c, n, t in zip(cells, switches, tie_switches):
        print(f"cell {c}: the responsible predictor changed {n} time{'s' if n != 1 else ''} "
              f"({t} of them while both IoUs were 0, when the nearer box wins); tracked every "
              f"{every} steps")


def draw_gradient_maps(path, image, boxes, snapshots, shots, lambda_noobj):
    """Figure 1: the four gradient maps at initialisation and at the end."""
    plt = pyplot()
    first, last = shots[0], shots[-1]
    norms_max = [max(float(cell_map(snapshots[s][1], ch).max()) for s in (first, last))
                 for _, ch, _ in MAPS]
    fig = plt.figure(figsize=(16, 8.8), layout="constrained")
    fig.get_layout_engine().set(rect=(0, 0.085, 1, 0.915))  # room for the caption below
    gs = fig.add_gridspec(2, 4)
    for row, step in enumerate((first, last)):
        draw_maps(fig, gs, row, image, boxes, snapshots[step][1], step, norms_max)
    fig.suptitle("The YOLOv1 loss of one image, backpropagated to the 7x7x30 output: per cell, "
                 "the L2 norm of the gradient (blank = exactly 0)", fontsize=11)
    fig.text(0.01, 0.01,
             "Colour, and the number written in a cell: the L2 norm of the loss's gradient over "
             "that column's outputs of the cell (both predictors' x, y; both predictors' sqrt w, "
             "sqrt h; both confidences; the 20 class scores).\nWhite rectangles: the true boxes; "
             "white dots: their centres, which decide the cells that hold an object. "
             "Colour scales are logarithmic, shared by the two rows of a column.\n"
             "Coordinates, sizes and class scores get a gradient only in the cells that hold an "
             "object centre (and there only the responsible predictor's box);\n"
             "the confidence gets one in every cell: "
             f"2 lambda_noobj C / N in empty cells (lambda_noobj = "
             f"{lambda_noobj}), 2 (C - IoU) / N for the responsible predictor.",
             fontsize=8.5, va="bottom")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_predictors(path, image, boxes, cells, snapshots, shots, results):
    """Figure 2: both predictors of each object cell as training proceeds, and their IoUs."""
    track, switches, tie_switches = results["track"], results["switches"], results["tie_switches"]
    resp, ious = np.array(track["responsible"]), np.array(track["iou"])
    plt = pyplot()
    fig = plt.figure(figsize=(16, 9.2), layout="constrained")
    gs = fig.add_gridspec(2, len(shots), height_ratios=[1.25, 1])
    shown = to_uint8_image(image[0]).repeat(4, 0).repeat(4, 1)
    for col, step in enumerate(shots):
        out, _, responsible, iou = snapshots[step]
        ax = fig.add_subplot(gs[0, col])
        draw_grid(ax, shown, S, boxes, out[0], B, cells, responsible[0], labels=False)
        ax.set_title(f"step {step}", fontsize=10)
        ax.set_xlabel("\n".join(confidence_line(out[0], responsible[0], i, j) for i, j in cells),
                      fontsize=8.5, family="monospace")
    steps_seen = np.array(track["step"])
    bottom = gs[1, :].subgridspec(1, len(cells))
    for k, (i, j) in enumerate(cells):
        ax = fig.add_subplot(bottom[0, k])
        for b in range(B):
            color = PREDICTOR_COLORS[b]
            ax.plot(steps_seen, ious[:, k, b], "-", color=color, lw=1.6, label=f"predictor {b + 1}")
            mine = resp[:, k] == b
            ax.plot(steps_seen[mine], ious[mine, k, b], "o", color=color, mec="black", mew=0.5,
                    ms=4, label=f"predictor {b + 1} responsible")
        for step in shots:
            ax.axvline(step, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("training step (dotted: the snapshots above)")
        ax.set_title(f"cell ({i}, {j}): predictor {resp[-1, k] + 1} responsible at the end\n"
                     f"changed {switches[k]}x ({tie_switches[k]}x with both IoUs 0: the nearer box "
                     f"won)", fontsize=9)
        for b in range(B):  # a strip on top: which predictor was responsible at each step
            at = resp[:, k] == b
            ax.plot(steps_seen[at], np.full(at.sum(), 1.06), "s", color=PREDICTOR_COLORS[b],
                    ms=4.5)
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set_ylim(-0.02, 1.11)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.grid(alpha=0.3)
        if k == 0:
            ax.set_ylabel("IoU with the cell's object")
            ax.legend(fontsize=7.5, loc="upper left")
    line = plt.Line2D
    handles = [line([], [], color=PREDICTOR_COLORS[b], lw=2, label=f"predictor {b + 1}")
               for b in range(B)]
    handles += [line([], [], color="0.3", lw=2.2, label="responsible: solid"),
                line([], [], color="0.3", lw=1.2, ls="--", label="not responsible: dashed"),
                line([], [], color="white", lw=1.4, label="true box (dot: its centre)"),
                line([], [], color="yellow", lw=1.5, label="the cell that holds the centre"),
                line([], [], color="0.3", marker="s", ls="", label="top row: the responsible one")]
    fig.legend(handles=handles, loc="outside lower center", ncol=7, fontsize=8.5, facecolor="0.6")
    fig.suptitle("Both predictors of each object cell through training: their boxes at four "
                 "steps (below each: their confidence, * = responsible); bottom: their IoU with "
                 "the object, dots where responsible", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
