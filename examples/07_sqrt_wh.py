"""Demo 7 - why YOLOv1 regresses sqrt(w) and sqrt(h): the same absolute error should cost a
small box more than a big one.

The seed's table: a 20x30 box predicted as 18x27 and a 4x6 box predicted as 2x3 are both off
by 2 in width and 3 in height. A squared error on w and h gives both the same loss (13),
although the small prediction is wrong by half its size and the big one by a tenth. On
sqrt(w), sqrt(h) the small box's loss is about 6.5 times the big one's.

The numbers are computed twice: by hand, and through tinygrad_yolo.detection.YOLOv1Loss
(its "size" part, lambda_coord * sum (sqrt(w) - sqrt(w_hat))^2 + (sqrt(h) - sqrt(h_hat))^2)
on a one-cell grid with the boxes in a 100 x 100 pixel image, in float64.
"""
import numpy as np

from demo_common import finish, parse_args, pyplot, tg
from tinygrad_yolo.detection import YOLOv1Loss

CASES = (("big", (20.0, 30.0), (18.0, 27.0)), ("small", (4.0, 6.0), (2.0, 3.0)))
IMAGE = 100.0  # pixels; the loss sees sizes as fractions of the image


def names_of(cases):
    return [name for name, _, _ in cases]


def by_hand(true, pred):
    (w, h), (pw, ph) = true, pred
    return (w - pw) ** 2 + (h - ph) ** 2, (np.sqrt(w) - np.sqrt(pw)) ** 2 + (np.sqrt(h) - np.sqrt(ph)) ** 2


def through_the_loss(true, pred, lambda_coord=5.0):
    """The YOLOv1Loss size term for one box in a 1x1 grid, converted back to pixels."""
    loss = YOLOv1Loss(S=1, B=1, C=1, lambda_coord=lambda_coord)
    (w, h), (pw, ph) = true, pred
    target = np.array([[[[0.5, 0.5, w / IMAGE, h / IMAGE, 1.0, 1.0]]]])
    # the network predicts (x, y, sqrt(w), sqrt(h), confidence, class score)
    p = tg.Tensor(np.array([[[[0.5, 0.5, np.sqrt(pw / IMAGE), np.sqrt(ph / IMAGE), 1.0, 1.0]]]]), requires_grad=True)
    total, parts = loss(p, target)
    total.backward()
    return parts["size"] / lambda_coord * IMAGE, p.grad.numpy()[0, 0, 0, 2:4]


def main(argv=None):
    args = parse_args(__doc__, argv)  # nothing to reduce: the same table at either size
    results = {}
    print(f"{'box':>8} {'true w x h':>11} {'predicted':>10} {'|dw|':>5} {'|dh|':>5} "
          f"{'(dw)^2+(dh)^2':>14} {'(d sqrt w)^2+(d sqrt h)^2':>26} {'via YOLOv1Loss':>15}")
    for name, true, pred in CASES:
        raw, sq = by_hand(true, pred)
        via_loss, grad = through_the_loss(true, pred)
        results[name] = {"raw": raw, "sqrt": sq, "via_loss": via_loss, "relative_error": 1 - pred[0] / true[0],
                         "grad_sqrt_wh": grad.tolist()}
        print(f"{name:>8} {f'{true[0]:g} x {true[1]:g}':>11} {f'{pred[0]:g} x {pred[1]:g}':>10} "
              f"{true[0] - pred[0]:>5g} {true[1] - pred[1]:>5g} {raw:>14.4f} {sq:>26.6f} {via_loss:>15.6f}")
    ratio = results["small"]["sqrt"] / results["big"]["sqrt"]
    results["ratio_small_over_big"] = ratio
    print(f"same absolute error: squared error on w, h gives {results['big']['raw']:g} for both boxes;")
    print(f"on sqrt(w), sqrt(h) the small box costs {ratio:.2f}x the big one "
          f"(it is off by {results['small']['relative_error']:.0%} of its size, the big one by "
          f"{results['big']['relative_error']:.0%})")
    for n in names_of(CASES):
        g = results[n]["grad_sqrt_wh"]
        print(f"{n} box: d loss / d (sqrt w_hat, sqrt h_hat) = ({g[0]:.3f}, {g[1]:.3f})  (image-relative units)")
    print(f"max |by hand - YOLOv1Loss| = "
          f"{max(abs(results[n]['sqrt'] - results[n]['via_loss']) for n in names_of(CASES)):.1e} (pixels)")

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    names = names_of(CASES)
    labels = [f"{n}: {t[0]:g}x{t[1]:g} -> {p[0]:g}x{p[1]:g}" for n, t, p in CASES]
    axes[0].bar(labels, [results[n]["raw"] for n in names], color=["tab:blue", "tab:orange"])
    axes[0].set_title("loss on w, h: (dw)^2 + (dh)^2", fontsize=10)
    axes[1].bar(labels, [results[n]["sqrt"] for n in names], color=["tab:blue", "tab:orange"])
    axes[1].set_title("loss on sqrt(w), sqrt(h)  (YOLOv1)", fontsize=10)
    for ax in axes:
        ax.set_ylabel("loss (pixels)")
        ax.grid(alpha=0.3, axis="y")
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    path = args.out / "07_sqrt_wh.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return finish(args, results, [path])


if __name__ == "__main__":
    main()
