"""Demo 8 - why lambda_noobj = 0.5: most grid cells hold no object, so without a down-weighting
their "confidence should be 0" term swamps the confidence loss.

A real batch: synthetic shape images (1 to 4 objects each) encoded on YOLOv1's 7x7 grid,
and the predictions of a freshly initialised detector (demo 6's 7x7x30 grid model,
demo_common.TinyDetector). YOLOv1's confidence loss has two parts
(tinygrad_yolo/detection/loss.py):

  obj   = sum over responsible predictors of (C - IoU)^2
  noobj = lambda_noobj * sum over all other predictors of C^2

and the other predictors are of two kinds: both boxes of every empty cell, and the
non-responsible box of each cell that holds an object. The script splits the noobj sum
that way, checks the parts against YOLOv1Loss, and prints the share of the confidence
loss (and of its gradient) that comes from empty cells at lambda_noobj = 1 and 0.5.

Then a short training sweep: the same detector, the same batches, lambda_noobj = 1, 0.5 and
0.1, tracking on held-out images the mean confidence of the responsible predictors (their
target is the IoU) and of the predictors in empty cells (target 0). What to look for: the
empty cells' term pulls every confidence towards 0, the object cells' included, so the
smaller lambda_noobj is, the sooner the responsible predictors' confidence can rise - and
the less firmly the empty cells' confidence is held at 0. The script prints both, computed.
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np

from demo_common import TinyDetector, finish, parse_args, pyplot, shape_images, tg
from tinygrad_yolo import optim
from tinygrad_yolo.detection import (YOLOv1Loss, encode_batch, mean_average_precision,
                                     postprocess)

S, B, C = 7, 2, 20


def confidence_parts(pred, target, loss_fn):
    """Unweighted sums: obj, noobj over empty cells, noobj over object cells' other boxes."""
    responsible, iou = loss_fn.assign(pred, target)
    N = pred.shape[0]
    conf = pred[..., :B * 5].reshape(N, S, S, B, 5)[..., 4]
    has_object = np.broadcast_to(target[..., 4:5] > 0, conf.shape)
    obj = float(((conf - iou) ** 2)[responsible].sum())
    empty = float((conf ** 2)[~has_object].sum())
    other = float((conf ** 2)[has_object & ~responsible].sum())
    return obj, empty, other, responsible, has_object


SWEEP = (1.0, 0.5, 0.1)


def held_out_confidences(model, images, target, loss_fn):
    """Mean confidence of the responsible predictors and of the empty cells' predictors."""
    with tg.no_grad():
        pred = model(tg.Tensor(images)).numpy().astype(np.float64)
    responsible, _ = loss_fn.assign(pred, target)
    conf = pred[..., :B * 5].reshape(pred.shape[0], S, S, B, 5)[..., 4]
    empty = np.broadcast_to(target[..., 4:5] == 0, conf.shape)
    return float(conf[responsible].mean()), float(conf[empty].mean()), pred


def sweep(args, sizes):
    """Train one detector per lambda_noobj (same init, same batches); track the confidences."""
    n_train, n_test, steps, batch, every = sizes
    rng = np.random.default_rng(args.seed + 1)
    images, boxes, labels = shape_images(n_train + n_test, 56, rng, max_objects=4, min_size=0.15,
                                         max_size=0.5)
    target, _ = encode_batch(boxes, labels, S=S, C=C)
    test_images, test_target = images[n_train:], target[n_train:].astype(np.float64)
    truth = [np.concatenate([b, l[:, None]], axis=1)
             for b, l in zip(boxes[n_train:], labels[n_train:])]
    out = {}
    for lam in SWEEP:
        tg.seed(args.seed)
        model = TinyDetector(S, B, C, img_size=56, head="conv")
        loss_fn = YOLOv1Loss(S=S, B=B, C=C, lambda_noobj=lam)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        order = np.random.default_rng(args.seed)
        track = {"step": [], "object": [], "empty": []}
        for step in range(steps + 1):
            if step % every == 0:
                model.eval()
                obj, emp, _ = held_out_confidences(model, test_images, test_target, loss_fn)
                model.train()
                track["step"].append(step)
                track["object"].append(obj)
                track["empty"].append(emp)
            if step == steps:
                break
            idx = order.integers(0, n_train, batch)
            loss, _ = loss_fn(model(tg.Tensor(images[idx])), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        _, _, pred = held_out_confidences(model, test_images, test_target, loss_fn)
        dets = postprocess(pred, S=S, B=B, C=C, conf_threshold=0.005)
        track["map50"] = float(mean_average_precision(dets, truth, C)["map"])
        out[f"{lam:g}"] = track
        print(f"  lambda_noobj = {lam:g}: after {steps} steps mean confidence of the responsible "
              f"predictors {track['object'][-1]:.3f}, of the empty cells' "
              f"{track['empty'][-1]:+.3f}; held-out mAP@0.5 {track['map50']:.3f}", flush=True)
    return out


def main(argv=None):
    args = parse_args(__doc__, argv)
    n = 8 if args.quick else 64
    rng = np.random.default_rng(args.seed)
    images, boxes, labels = shape_images(n, 56, rng, max_objects=4, min_size=0.15, max_size=0.5)
    target, dropped = encode_batch(boxes, labels, S=S, C=C)
    target = target.astype(np.float64)
    tg.seed(args.seed)
    model = TinyDetector(S, B, C, img_size=56, head="conv").double()  # demo 6's grid model
    with tg.no_grad():
        pred = model(tg.Tensor(images.astype(np.float64))).numpy()

    cells = n * S * S
    object_cells = int((target[..., 4] > 0).sum())
    print(f"batch: {n} images, {sum(len(b) for b in boxes)} objects ({dropped} dropped: a second "
          f"centre in a cell), {cells} cells of which {object_cells} hold an object "
          f"({object_cells / cells:.1%}); {cells * B} predictors")
    obj, empty, other, responsible, has_object = confidence_parts(pred, target,
                                                                 YOLOv1Loss(S=S, B=B, C=C))
    conf = pred[..., :B * 5].reshape(n, S, S, B, 5)[..., 4]
    print(f"predicted confidences at init: mean {conf.mean():+.3f}, std {conf.std():.3f}")
    print(f"unweighted sums: obj {obj:.3f} ({int(responsible.sum())} predictors), noobj empty "
          f"cells {empty:.3f} ({int((~has_object).sum())}), noobj other box in object cells "
          f"{other:.3f} ({int((has_object & ~responsible).sum())})")

    results = {"images": n, "objects": sum(len(b) for b in boxes), "dropped": dropped,
               "cells": cells, "object_cells": object_cells,
               "object_cell_fraction": object_cells / cells, "obj": obj,
               "noobj_empty": empty, "noobj_other": other}
    for lam in (1.0, 0.5):
        results[f"lambda_{lam:g}"] = weigh_empty_cells(lam, pred, target, (obj, empty, other),
                                                       has_object)

    # share = lam E / (O + lam (E + R)) reaches one half at lam = O / (E - R)
    results["break_even_lambda"] = obj / (empty - other)
    print(f"lambda_noobj = 0.5 halves the empty cells' weight, but they outnumber the responsible "
          f"predictors {int((~has_object).sum()) / int(responsible.sum()):.0f} to 1: on this batch "
          f"they fall to half of the confidence loss only at lambda_noobj = "
          f"{results['break_even_lambda']:.3f}")
    path = draw_shares(args.out / "08_lambda_noobj.png", n, obj, empty, other)

    # n_train, n_test, steps, batch, evaluate every
    if args.smoke:
        sizes = (32, 8, 10, 8, 5)
    elif args.quick:
        sizes = (256, 32, 60, 16, 5)
    else:
        sizes = (2048, 128, 300, 32, 10)
    print(f"training sweep: {sizes[2]} Adam steps of batch {sizes[3]} per lambda_noobj, same init "
          f"and batches, confidences on {sizes[1]} held-out images")
    results["sweep"] = tracks = sweep(args, sizes)
    results["sweep_summary"] = summarize_sweep(tracks)
    sweep_path = draw_sweep(args.out / "08_lambda_sweep.png", tracks)
    return finish(args, results, [path, sweep_path], "08_lambda_noobj")


def weigh_empty_cells(lam, pred, target, sums, has_object):
    """The empty cells' share of the confidence loss and of its gradient at ``lam``, checked
    against YOLOv1Loss's own parts."""
    obj, empty, other = sums
    n = pred.shape[0]
    loss_fn = YOLOv1Loss(S=S, B=B, C=C, lambda_noobj=lam)
    p = tg.Tensor(pred, requires_grad=True)
    total, parts = loss_fn(p, target)
    total.backward()
    # the loss divides by the batch size; the split above must add up to its parts
    check = max(abs(parts["obj"] * n - obj), abs(parts["noobj"] * n - lam * (empty + other)))
    confidence_loss = obj + lam * (empty + other)
    share = lam * empty / confidence_loss
    g = p.grad.numpy()[..., :B * 5].reshape(n, S, S, B, 5)[..., 4] ** 2  # d loss / d conf, squared
    grad_share = float(g[~has_object].sum() / g.sum())
    shares = {"share_empty": share, "share_all_noobj": lam * (empty + other) / confidence_loss,
              "grad_share_empty": grad_share, "check": check}
    print(f"lambda_noobj = {lam:g}: empty cells give {share:.1%} of the confidence loss "
          f"(all noobj predictors {shares['share_all_noobj']:.1%}) and "
          f"{grad_share:.1%} of its squared gradient norm on the confidences;"
          f" |split - YOLOv1Loss parts| = {check:.1e}")
    return shares


def summarize_sweep(tracks):
    """Which lambda_noobj ends with the most confident responsible predictors, and which keeps
    the empty cells' confidence nearest 0."""
    half = len(tracks["1"]["step"]) // 2  # the second half of the run: past the first transient
    summary = {lam: (tracks[lam]["object"][-1], float(np.mean(np.abs(tracks[lam]["empty"][half:]))))
               for lam in tracks}
    by_object = sorted(summary, key=lambda lam: -summary[lam][0])
    by_empty = sorted(summary, key=lambda lam: summary[lam][1])
    print("  responsible predictors' confidence at the end, highest first: lambda_noobj = "
          + ", ".join(f"{lam} ({summary[lam][0]:.3f})" for lam in by_object))
    print("  empty cells' |confidence| over the second half, closest to 0 first: lambda_noobj = "
          + ", ".join(f"{lam} ({summary[lam][1]:.3f})" for lam in by_empty))
    return {lam: {"object_final": o, "empty_abs_late": e} for lam, (o, e) in summary.items()}


def draw_shares(path, n, obj, empty, other):
    """One stacked bar per lambda_noobj: the parts of the confidence loss."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    names = ("obj (responsible boxes)", "noobj, other box of object cells", "noobj, empty cells")
    for i, lam in enumerate((1.0, 0.5)):
        parts = [obj, lam * other, lam * empty]
        total = sum(parts)
        bottom = 0.0
        for part, label, color in zip(parts, names, ("tab:green", "tab:orange", "tab:red")):
            ax.bar(i, part / total, bottom=bottom, color=color, label=label if i == 0 else None)
            bottom += part / total
        ax.text(i, 1.02, f"empty: {lam * empty / total:.0%}", ha="center", fontsize=9)
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["lambda_noobj = 1", "lambda_noobj = 0.5"])
    ax.set_ylabel("share of the confidence loss")
    ax.set_ylim(0, 1.12)
    ax.set_title(f"Confidence loss on a batch of {n} images, detector at init", fontsize=10)
    ax.set_xlim(-0.6, 1.6)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_sweep(path, tracks):
    """The held-out confidences during training, one colour per lambda_noobj."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for lam, color in zip(SWEEP, ("tab:red", "tab:purple", "tab:blue")):
        t = tracks[f"{lam:g}"]
        ax.plot(t["step"], t["object"], "-", color=color, lw=1.8,
                label=f"lambda_noobj = {lam:g}: responsible predictors (mAP {t['map50']:.2f})")
        ax.plot(t["step"], t["empty"], "--", color=color, lw=1.4,
                label=f"lambda_noobj = {lam:g}: empty cells")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlabel("training step")
    ax.set_ylabel("mean predicted confidence (held-out)")
    ax.set_title("Confidence in object cells (solid, target = IoU) and empty cells (dashed, "
                 "target 0)", fontsize=10)
    ax.legend(fontsize=7.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
