"""Demo 4 - the degradation problem (He et al. 2016, Fig. 1) in miniature: training loss of
plain-20, plain-56, ResNet-20 and ResNet-56 on one small task, for the same number of steps.

He et al. found that a deeper *plain* net reaches a higher training error than a shallower
one - not overfitting (the training error itself is worse) but an optimisation problem -
and that with shortcut connections the deeper net no longer does worse.

Here the four CIFAR-style nets (tinygrad_yolo.models: plain20/56, resnet20/56, shortcut "A",
half width: 8/16/32 channels) learn to classify synthetic shape images (20 classes: 5 shapes
x 4 colours, 16x16 pixels), with SGD (momentum 0.9, weight decay 1e-4, learning rate 0.05
after a 20-step linear warm-up), batch 32, the same batches for every net. The script
prints each net's mean training loss over the last tenth of the steps and states what the
numbers show; the comparisons are computed, not assumed. Two minutes of CPU is a very
short training run (the paper trains for 64k steps): read the curves as the early phase.
In our runs the deeper plain net always trained worse, while ResNet-56 was far ahead of
plain-56 but, this early, level with ResNet-20 at best (see examples/README.md).
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import textwrap

import numpy as np

from demo_common import finish, parse_args, pyplot, shape_images, tg
from tinygrad_yolo import models, optim
from tinygrad_yolo.nn import functional as F

NETS = ("plain20", "plain56", "resnet20", "resnet56")


def add_flags(parser):
    parser.add_argument("--steps", type=int, default=None, help="training steps per net (default 200; 80 with --quick)")
    parser.add_argument("--zero-init-residual", action="store_true",
                        help="start each residual block as the identity (demo 2) instead of the paper's init")


def train(name, data, steps, batch, width, seed, zero_init, lr=0.05, warmup=20):
    images, labels = data
    tg.seed(seed)
    kwargs = {"zero_init_residual": True} if zero_init and name.startswith("resnet") else {}
    net = getattr(models, name)(num_classes=20, width=width, **kwargs)
    opt = optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    order = np.random.default_rng(seed)  # the same batches for every net
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        idx = order.integers(0, len(images), batch)
        loss = F.cross_entropy(net(tg.Tensor(images[idx])), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.array(losses)


def smooth(values, k):
    """Running mean over k steps (for the plot; the raw losses are noisy)."""
    k = max(1, min(k, len(values)))
    c = np.cumsum(np.insert(values, 0, 0.0))
    return (c[k:] - c[:-k]) / k


def main(argv=None):
    args = parse_args(__doc__, argv, add_flags)
    n, size, width, batch = (128, 16, 0.25, 8) if args.smoke else (512, 16, 0.25, 16) if args.quick else \
        (2048, 16, 0.5, 32)
    steps = args.steps or (16 if args.smoke else 80 if args.quick else 200)
    if steps < 1:
        raise SystemExit("--steps must be at least 1")
    rng = np.random.default_rng(args.seed)
    images, _, classes = shape_images(n, size, rng, min_size=0.45, max_size=0.9)
    mean, std = images.mean(axis=(0, 2, 3), keepdims=True), images.std(axis=(0, 2, 3), keepdims=True)
    images = (images - mean) / std
    labels = np.array([c[0] for c in classes])
    print(f"task: {n} synthetic images {size}x{size}, 20 classes; {steps} SGD steps of batch {batch}, width {width}"
          + (", zero_init_residual" if args.zero_init_residual else ""))

    k = max(1, steps // 10)
    results, curves = {"steps": steps, "last_k": k}, {}
    for name in NETS:
        losses = train(name, (images, labels), steps, batch, width, args.seed, args.zero_init_residual)
        final = float(losses[-k:].mean())
        results[name] = {"losses": losses.tolist(), "final": final}
        curves[name] = (np.arange(len(smooth(losses, k))) + k, smooth(losses, k))
        print(f"  {name:<9} loss at step 1 {losses[0]:.3f}, mean of the last {k} steps {final:.3f}", flush=True)

    f = {name: results[name]["final"] for name in NETS}
    plain_gap, res_gap = f["plain56"] - f["plain20"], f["resnet56"] - f["resnet20"]
    results.update(plain_gap=plain_gap, residual_gap=res_gap)
    level = 0.05  # gaps this small are within the run-to-run noise of a loss of ~2
    plain_says = ("the deeper plain net trains worse: degradation" if plain_gap > level else
                  "level: no degradation visible in this run" if plain_gap >= -level else
                  "the deeper plain net trains better in this run")
    res_says = ("the deeper ResNet is ahead" if res_gap < -level else
                "level" if res_gap <= level else
                "the deeper ResNet is still behind after this many steps"
                + (", by less than plain-56 is behind plain-20" if res_gap < plain_gap else ""))
    print(f"deeper plain:    plain-56 - plain-20   = {plain_gap:+.3f}  ({plain_says})")
    print(f"deeper residual: ResNet-56 - ResNet-20 = {res_gap:+.3f}  ({res_says})")
    print(f"at depth 56:     ResNet-56 - plain-56  = {f['resnet56'] - f['plain56']:+.3f}")

    # Two panels as in He et al. Fig. 1 / Fig. 6: plain nets | residual nets, line style = depth.
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, family, color, title in ((axes[0], "plain", "tab:red", "plain nets"),
                                     (axes[1], "resnet", "tab:blue", "residual nets (ResNet)")):
        for depth, style in ((20, "-"), (56, "--")):
            xs, ys = curves[f"{family}{depth}"]
            ax.plot(xs, ys, style, color=color, lw=1.8,
                    label=f"{family}-{depth}: last {k} steps {f[f'{family}{depth}']:.2f}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    axes[0].set_ylabel(f"training loss (running mean of {k} steps)")
    fig.suptitle(f"Degradation in miniature: {steps} SGD steps each on the same batches (He et al. 2016 train "
                 f"64k steps)", fontsize=11)
    caption = (f"This run: plain-56 - plain-20 = {plain_gap:+.2f} ({plain_says}); ResNet-56 - ResNet-20 = "
               f"{res_gap:+.2f} ({res_says}).")
    fig.text(0.01, 0.01, textwrap.fill(caption, 150), fontsize=8.5, va="bottom")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = args.out / "04_degradation.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return finish(args, results, [path], "04_degradation")


if __name__ == "__main__":
    main()
