"""Demo 3 - the gradient superhighway: the gradient's norm at every depth of a 56-layer
plain net and of ResNet-56, at initialisation, after one backward.

Going backward through a plain net, the gradient is multiplied by one layer Jacobian after
another: 54 factors, so its norm drifts exponentially with depth, up or down. In a residual
net each block passes dL/dy on unchanged *plus* its branch's part (demo 1), so the
gradient at block l is dL/dx_L times a product of (1 + branch) terms: it keeps the
direct path to the loss, and its norm stays within a modest factor across depth.

Measured with a module backward hook (Module.register_full_backward_hook) on each of the
27 BasicBlocks, which records |dL/d(block output)|, and with dL/d(input image). Loss:
cross-entropy on a batch of synthetic shape images, random init, one backward.

He et al. (2016, section 4.1) argue that the degradation of deep plain nets is "unlikely to be
caused by vanishing gradients": with BatchNorm the backward signal keeps healthy norms. This
demo measures exactly that. Two settings of BatchNorm, both at initialisation:
  * training mode (batch statistics): how the nets are trained. Here the plain net's
    gradient *explodes* towards the input (BatchNorm's known effect in deep plain nets),
    while ResNet-56's grows by about an order of magnitude over its 27 blocks.
  * eval mode with the initial running statistics (mean 0, variance 1): BatchNorm is then
    the identity, i.e. the nets without normalisation. The plain net's gradient at the
    input is orders of magnitude *below* ResNet-56's - but ResNet-56 is no healthy
    model here either: without normalisation its forward signal and gradient both grow
    block after block (the reason for BatchNorm, or for zero_init_residual; see demo 2).

A third panel is the clean version of "skip connections stop the gradient from vanishing"
(the same construction as tests/test_residual.py): 50 blocks without normalisation whose
branches are two 3x3 convolutions of gain 0.01, so each branch's Jacobian is about 1e-4.
Without skips the gradient is multiplied by that 50 times and vanishes (to about 1e-200);
with skips each block passes dL/dy on unchanged plus a 1e-4 correction, so it arrives intact.
Vanishing gradients are real, then - but they are not what happens in a plain net with
BatchNorm, which is what He et al. trained.
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np

from demo_common import finish, parse_args, pyplot, shape_images, tg
from tinygrad_yolo import models
from tinygrad_yolo.models import BasicBlock
from tinygrad_yolo.nn import functional as F


def gradient_by_depth(name, images, labels, seed, bn_training):
    """|dL/d(block output)| for each block (input side first) and |dL/d(input)|."""
    tg.seed(seed)
    net = getattr(models, name)(num_classes=20)
    net.train(bn_training)
    norms = {}
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    for i, block in enumerate(blocks):
        block.register_full_backward_hook(
            lambda module, grad, i=i: norms.__setitem__(i, float(np.linalg.norm(grad.numpy()))))
    x = tg.Tensor(images, requires_grad=True)
    loss = F.cross_entropy(net(x), labels)
    loss.backward()
    by_depth = np.array([norms[i] for i in range(len(blocks))])
    return by_depth, float(np.linalg.norm(x.grad.numpy())), loss.item()


DEPTH = 50


def times(factor):
    """5361.7 -> '5,400x', 20.8 -> '21x', 0.0051 -> '0.0051x' (two significant digits)."""
    rounded = float(f"{factor:.2g}")
    return f"{rounded:,.0f}x" if rounded >= 10 else f"{rounded:g}x"


def norm(a):
    """|a|, scaled first: the square of a 1e-200 gradient underflows to 0 in float64."""
    a = np.asarray(a)
    top = float(np.abs(a).max())
    return top * float(np.linalg.norm(a / top)) if top > 0 else 0.0


def synthetic_stack(seed, skip, shape=(2, 3, 5, 5)):
    """|dL/d h_l| after each of DEPTH blocks h_l = f_l(h_{l-1}) (+ h_{l-1} with ``skip``), f a
    conv-ReLU-conv of gain 0.01, float64; input side first, index 0 = the input itself."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    scale = 0.01 / np.sqrt(9 * c)
    convs = [(rng.standard_normal((c, c, 3, 3)) * scale, rng.standard_normal((c, c, 3, 3)) * scale)
             for _ in range(DEPTH)]
    x0, upstream = rng.standard_normal(shape), rng.standard_normal(shape)
    norms = [None] * (DEPTH + 1)
    x = tg.Tensor(x0, requires_grad=True)
    h = x
    for depth, (w1, w2) in enumerate(convs, 1):
        f = F.conv2d(F.relu(F.conv2d(h, tg.Tensor(w1), padding=1)), tg.Tensor(w2), padding=1)
        h = f + h if skip else f
        if depth < DEPTH:  # a hook sees the gradient of h once it is complete
            h.register_hook(lambda g, depth=depth: norms.__setitem__(depth, norm(g.numpy())))
    norms[DEPTH] = norm(upstream)
    h.backward(tg.Tensor(upstream))
    norms[0] = norm(x.grad.numpy())
    return np.array(norms)


def main(argv=None):
    args = parse_args(__doc__, argv)
    n, size = (8, 8) if args.quick else (32, 32)
    rng = np.random.default_rng(args.seed)
    images, _, classes = shape_images(n, size, rng, min_size=0.4, max_size=0.9)
    images = (images - images.mean()) / images.std()
    labels = np.array([c[0] for c in classes])
    results = {}
    print(f"batch: {n} synthetic images {size}x{size}, cross-entropy over 20 classes, "
          f"networks at init")
    for mode, training in (("train", True), ("eval", False)):
        compare_nets(mode, training, images, labels, args.seed, results)

    for skip in (True, False):
        norms = synthetic_stack(args.seed, skip)
        key = "stack_skip" if skip else "stack_plain"
        results[key] = {"norms": norms.tolist(), "input_over_output": float(norms[0] / norms[-1])}
        print(f"synthetic {DEPTH}-block stack, branch gain ~1e-4, "
              f"{'with' if skip else 'without'} skips: "
              f"|dL/d input| / |dL/d output| = {norms[0] / norms[-1]:.3g}")

    train_p, train_r = results["train_plain56"], results["train_resnet56"]
    grows = train_p["first_over_last"] > 1
    results["verdict"] = verdict = (
        f"With BatchNorm, plain-56's gradient {'explodes' if grows else 'vanishes'} towards the "
        f"input ({times(train_p['first_over_last'])} from the last block to the first)"
        + (" - it does not vanish (He et al. 2016, section 4.1)" if grows else "")
        + f"; ResNet-56's changes {times(train_r['first_over_last'])}")
    print(verdict)
    path = draw_figure(args.out / "03_gradient_superhighway.png", results, verdict)
    return finish(args, results, [path], "03_gradient_superhighway")


def compare_nets(mode, training, images, labels, seed, results):
    """plain-56 and ResNet-56's gradients by depth, BatchNorm in ``training`` mode or not."""
    if training:
        print("BatchNorm in training mode")
    else:
        print("BatchNorm in eval mode at init (= no normalisation)")
    for name in ("plain56", "resnet56"):
        g, g_input, loss = gradient_by_depth(name, images, labels, seed, training)
        spread = float(g.max() / g.min())
        results[f"{mode}_{name}"] = {"block_grad_norms": g.tolist(), "input_grad_norm": g_input,
                                     "spread": spread, "first_over_last": float(g[0] / g[-1]),
                                     "loss": loss}
        print(f"  {name:<9} loss {loss:9.3f}   |dL/d input| = {g_input:9.3e}   "
              f"|dL/d block out|: last {g[-1]:.2e}, first {g[0]:.2e}, "
              f"max/min over depth {spread:8.1f}")
    p, r = results[f"{mode}_plain56"], results[f"{mode}_resnet56"]
    print(f"  input gradient ResNet-56 / plain-56 = "
          f"{r['input_grad_norm'] / p['input_grad_norm']:.3g};  "
          f"spread over depth plain-56 / ResNet-56 = {p['spread'] / r['spread']:.3g}")


def draw_figure(path, results, verdict):
    """The gradient by depth of both nets, BatchNorm training and not, and the synthetic stack."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    titles = {"train": "BatchNorm, training mode (batch statistics):\nhow the nets train",
              "eval": "BatchNorm at its init statistics\n(= no normalisation)"}
    for ax, mode in zip(axes, ("train", "eval")):
        for name, color in (("plain56", "tab:red"), ("resnet56", "tab:blue")):
            g = results[f"{mode}_{name}"]["block_grad_norms"]
            ax.plot(range(1, len(g) + 1), g, "o-", ms=3, color=color,
                    label=f"{name}, block outputs")
            ax.plot([0], [results[f"{mode}_{name}"]["input_grad_norm"]], "s", color=color, ms=6,
                    label=f"{name}, input image")
        ax.set_yscale("log")
        ax.set_xlabel("block (0 = the input image; the loss is to the right)")
        ax.set_title(titles[mode], fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|dL / d(block output)|")
    ax = axes[2]
    for key, color, label in (("stack_skip", "tab:blue", "h + f(h): with skips"),
                              ("stack_plain", "tab:red", "f(h): without skips")):
        ax.plot(range(DEPTH + 1), results[key]["norms"], "o-", ms=2.5, color=color, label=label)
    ax.set_yscale("log")
    low = min(min(results[key]["norms"]) for key in ("stack_skip", "stack_plain"))
    ax.set_yticks([10.0 ** k for k in range(0, int(np.floor(np.log10(low))) - 1, -50)])  # 1, 1e-50
    ax.minorticks_off()
    ax.set_xlabel(f"block (0 = the input, {DEPTH} = the output)")
    ax.set_ylabel("|dL / dh|")
    ax.set_title(f"Synthetic: {DEPTH} blocks, branch gain ~1e-4, no BatchNorm\n"
                 "(tests/test_residual.py): here the gradient does vanish", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(verdict.replace("; ", ";\n", 1) + ". A gradient vanishes when every block's "
                 "Jacobian is tiny (right).", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
