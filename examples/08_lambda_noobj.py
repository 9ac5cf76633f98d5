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
"""
import numpy as np

from demo_common import TinyDetector, finish, parse_args, pyplot, shape_images, tg
from tinygrad_yolo.detection import YOLOv1Loss, encode_batch

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


def main(argv=None):
    args = parse_args(__doc__, argv)
    n = 8 if args.small else 64
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
    print(f"batch: {n} images, {sum(len(b) for b in boxes)} objects ({dropped} dropped: a second centre in a "
          f"cell), {cells} cells of which {object_cells} hold an object ({object_cells / cells:.1%}); "
          f"{cells * B} predictors")
    loss_fn = YOLOv1Loss(S=S, B=B, C=C)
    obj, empty, other, responsible, has_object = confidence_parts(pred, target, loss_fn)
    conf = pred[..., :B * 5].reshape(n, S, S, B, 5)[..., 4]
    print(f"predicted confidences at init: mean {conf.mean():+.3f}, std {conf.std():.3f}")
    print(f"unweighted sums: obj {obj:.3f} ({int(responsible.sum())} predictors), noobj empty cells {empty:.3f} "
          f"({int((~has_object).sum())}), noobj other box in object cells {other:.3f} "
          f"({int((has_object & ~responsible).sum())})")

    results = {"object_cell_fraction": object_cells / cells, "obj": obj, "noobj_empty": empty, "noobj_other": other}
    for lam in (1.0, 0.5):
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
        results[f"lambda_{lam:g}"] = {"share_empty": share, "share_all_noobj": lam * (empty + other) / confidence_loss,
                                      "grad_share_empty": grad_share, "check": check}
        print(f"lambda_noobj = {lam:g}: empty cells give {share:.1%} of the confidence loss "
              f"(all noobj predictors {results[f'lambda_{lam:g}']['share_all_noobj']:.1%}) and "
              f"{grad_share:.1%} of its squared gradient norm on the confidences;"
              f" |split - YOLOv1Loss parts| = {check:.1e}")

    # share = lam E / (O + lam (E + R)) reaches one half at lam = O / (E - R)
    results["break_even_lambda"] = obj / (empty - other)
    print(f"lambda_noobj = 0.5 halves the empty cells' weight, but they outnumber the responsible predictors "
          f"{int((~has_object).sum()) / int(responsible.sum()):.0f} to 1: on this batch they fall to half of the "
          f"confidence loss only at lambda_noobj = {results['break_even_lambda']:.3f}")

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, lam in enumerate((1.0, 0.5)):
        parts = [obj, lam * other, lam * empty]
        total = sum(parts)
        bottom = 0.0
        for part, label, color in zip(parts, ("obj (responsible boxes)", "noobj, other box of object cells",
                                              "noobj, empty cells"), ("tab:green", "tab:orange", "tab:red")):
            ax.bar(i, part / total, bottom=bottom, color=color, label=label if i == 0 else None)
            bottom += part / total
        ax.text(i, 1.02, f"empty: {lam * empty / total:.0%}", ha="center", fontsize=9)
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["lambda_noobj = 1", "lambda_noobj = 0.5"])
    ax.set_ylabel("share of the confidence loss")
    ax.set_ylim(0, 1.12)
    ax.set_title(f"Confidence loss on a batch of {n} images, detector at init", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = args.out / "08_lambda_noobj.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return finish(args, results, [path])


if __name__ == "__main__":
    main()
