"""Demo 7 - why YOLOv1 regresses sqrt(w) and sqrt(h): the same absolute error should cost a
small box more than a big one.

The seed's table: a 20x30 box predicted as 18x27 and a 4x6 box predicted as 2x3 are both off
by 2 in width and 3 in height. A squared error on w and h gives both the same loss (13 px^2),
although the small prediction is wrong by half its size and the big one by a tenth. On
sqrt(w), sqrt(h) the small box's loss is about 6.5 times the big one's.

The square root only partly evens out box sizes, though: at the same *relative* error (10%:
20x30 -> 18x27 and 4x6 -> 3.6x5.4) the squared error on w, h makes the big box cost 25 times
the small one's (the area ratio), and on sqrt(w), sqrt(h) it still costs 5 times as much
(the size ratio: (sqrt(w) - sqrt(0.9 w))^2 grows like w). Only a loss on log(w) would treat
both alike (later YOLOs regress log-space offsets).

The numbers are computed twice: by hand, and through tinygrad_yolo.detection.YOLOv1Loss
(its "size" part, lambda_coord * sum (sqrt(w) - sqrt(w_hat))^2 + (sqrt(h) - sqrt(h_hat))^2)
on a one-cell grid with the boxes in a 100 x 100 pixel image, in float64.
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np

from demo_common import finish, parse_args, pyplot, tg
from tinygrad_yolo.detection import YOLOv1Loss

# (name, true w x h, predicted w x h) in pixels
CASES = (("big", (20.0, 30.0), (18.0, 27.0)), ("small", (4.0, 6.0), (2.0, 3.0)))  # 2 and 3 px off
RELATIVE = (("big", (20.0, 30.0), (18.0, 27.0)), ("small", (4.0, 6.0), (3.6, 5.4)))  # 10% off
IMAGE = 100.0  # pixels; the loss sees sizes as fractions of the image


def names_of(cases):
    return [name for name, _, _ in cases]


def by_hand(true, pred):
    (w, h), (pw, ph) = true, pred
    raw = (w - pw) ** 2 + (h - ph) ** 2
    return raw, (np.sqrt(w) - np.sqrt(pw)) ** 2 + (np.sqrt(h) - np.sqrt(ph)) ** 2


def through_the_loss(true, pred, lambda_coord=5.0):
    """The YOLOv1Loss size term for one box in a 1x1 grid, converted back to pixels."""
    loss = YOLOv1Loss(S=1, B=1, C=1, lambda_coord=lambda_coord)
    (w, h), (pw, ph) = true, pred
    target = np.array([[[[0.5, 0.5, w / IMAGE, h / IMAGE, 1.0, 1.0]]]])
    # the network predicts (x, y, sqrt(w), sqrt(h), confidence, class score)
    p = tg.Tensor(np.array([[[[0.5, 0.5, np.sqrt(pw / IMAGE), np.sqrt(ph / IMAGE), 1.0, 1.0]]]]),
                  requires_grad=True)
    total, parts = loss(p, target)
    total.backward()
    return parts["size"] / lambda_coord * IMAGE, p.grad.numpy()[0, 0, 0, 2:4]


def table(cases, title):
    """Print the table for ``cases``; return {name: {...}} with the numbers and the gradient."""
    print(title)
    print(f"{'box':>8} {'true w x h':>11} {'predicted':>10} {'|dw|':>5} {'|dh|':>5} "
          f"{'(dw)^2+(dh)^2':>14} {'(d sqrt w)^2+(d sqrt h)^2':>26} {'via YOLOv1Loss':>15}")
    rows = {}
    for name, true, pred in cases:
        raw, sq = by_hand(true, pred)
        via_loss, grad = through_the_loss(true, pred)
        rows[name] = {"raw": raw, "sqrt": sq, "via_loss": via_loss,
                      "relative_error": 1 - pred[0] / true[0], "grad_sqrt_wh": grad.tolist(),
                      "true": list(true), "pred": list(pred)}
        print(f"{name:>8} {f'{true[0]:g} x {true[1]:g}':>11} {f'{pred[0]:g} x {pred[1]:g}':>10} "
              f"{true[0] - pred[0]:>5.3g} {true[1] - pred[1]:>5.3g} {raw:>14.4f} {sq:>26.6f} "
              f"{via_loss:>15.6f}")
    return rows


def main(argv=None):
    args = parse_args(__doc__, argv)  # nothing to reduce: --quick is the full table
    results = table(CASES, "the same absolute error (2 px in width, 3 px in height):")
    ratio = results["small"]["sqrt"] / results["big"]["sqrt"]
    results["ratio_small_over_big"] = ratio
    print(f"same absolute error: squared error on w, h gives {results['big']['raw']:g} px^2 for "
          f"both boxes;")
    print(f"on sqrt(w), sqrt(h) the small box costs {ratio:.2f}x the big one "
          f"(it is off by {results['small']['relative_error']:.0%} of its size, the big one by "
          f"{results['big']['relative_error']:.0%})")
    for n in names_of(CASES):
        g = results[n]["grad_sqrt_wh"]
        print(f"{n} box: d loss / d (sqrt w_hat, sqrt h_hat) = ({g[0]:.3f}, {g[1]:.3f})  "
              f"(image-relative units)")

    rel = table(RELATIVE, "the same relative error (10% of each side):")
    rel["raw_big_over_small"] = rel["big"]["raw"] / rel["small"]["raw"]
    rel["sqrt_big_over_small"] = rel["big"]["sqrt"] / rel["small"]["sqrt"]
    results["relative"] = rel
    print(f"same relative error: the big box costs {rel['raw_big_over_small']:.3g}x the small one "
          f"on w, h and still {rel['sqrt_big_over_small']:.3g}x on sqrt(w), sqrt(h): the square "
          f"root only partly evens out sizes")
    worst = max(abs(r[n]["sqrt"] - r[n]["via_loss"])
                for r in (results, rel) for n in names_of(CASES))
    results["max_loss_difference"] = worst
    print(f"max |by hand - YOLOv1Loss| = {worst:.1e} (pixels)")
    path = draw_figure(args.out / "07_sqrt_wh.png", results, rel)
    return finish(args, results, [path], "07_sqrt_wh")


def draw_figure(path, results, rel):
    """Bars of both losses for both boxes: rows the same absolute and the same relative error."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.4))
    rows_of = ((results, CASES, "same absolute error: 2 px in w, 3 px in h"),
               (rel, RELATIVE, "same relative error: 10% of each side"))
    losses = (("raw", "px$^2$", "loss on w, h: (dw)$^2$ + (dh)$^2$"),
              ("sqrt", "px", r"loss on $\sqrt{w}, \sqrt{h}$ (YOLOv1)"))
    for row, (rows, cases, what) in enumerate(rows_of):
        labels = [f"{n}: {t[0]:g}x{t[1]:g} -> {p[0]:g}x{p[1]:g}" for n, t, p in cases]
        for col, (key, unit, title) in enumerate(losses):
            ax = axes[row, col]
            values = [rows[n][key] for n in names_of(cases)]
            bars = ax.bar(labels, values, color=["tab:blue", "tab:orange"])
            ax.bar_label(bars, labels=[f"{v:.4g} {unit}" for v in values], fontsize=9, padding=2)
            big, small = values
            if np.isclose(big, small):
                ratio_text = "equal"
            elif small > big:
                ratio_text = f"small costs {small / big:.3g}x the big"
            else:
                ratio_text = f"big costs {big / small:.3g}x the small"
            ax.set_title(f"{what}\n{title}: {ratio_text}", fontsize=9)
            ax.set_ylabel(f"loss ({unit})")
            ax.set_ylim(0, max(values) * 1.2)
            ax.grid(alpha=0.3, axis="y")
            ax.tick_params(axis="x", labelsize=8)
    fig.suptitle("Why sqrt(w), sqrt(h): the same error in pixels costs a small box more - "
                 "but at the same relative error the big box still costs more", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
