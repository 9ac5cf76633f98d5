"""Demo 1 - the residual split: for y = F(x) + x,  dL/dx = dL/dy * dF/dx + dL/dy.

A residual block adds its input back onto its branch's output. The chain rule then
splits the gradient reaching x into two parts: what flows back through the branch F
(dL/dy * dF/dx) and what the skip connection hands over unchanged (dL/dy itself).

We check it on a real BasicBlock (tinygrad_yolo.models.BasicBlock, float64, BatchNorm in
training mode). y is the block's sum F(x) + x, before its final ReLU. The loss is a
fixed random projection L = sum(v * block(x)).

  1. backward() through the whole block gives dL/dx.
  2. The same forward written out with the block's own layers, but with the branch and
     the skip fed by two separate leaf copies of x, gives the two parts separately
     (and retain_grad() on y gives dL/dy).
  3. The parts add up to dL/dx to machine precision; the skip part *is* dL/dy.
     (That is how backward() builds dL/dx: a tensor used twice receives two contributions
     and adds them. So, independently, dL/dx is also checked against float64 central
     differences of L along a random direction.)

The same split holds for a block whose shape changes (stride 2, projection shortcut "B"):
there the skip part is dL/dy * ds/dx for the 1x1-conv shortcut s.
"""
import numpy as np

from demo_common import finish, parse_args, pyplot, tg
from tinygrad_yolo.models import BasicBlock


def split_gradients(block, x0, v):
    """(dL/dx from backward(), dL/dy, branch part, skip part, max |output difference|)."""
    x = tg.Tensor(x0, requires_grad=True)
    out = block(x)
    (out * v).sum().backward()

    x_branch = tg.Tensor(x0, requires_grad=True)  # feeds F only
    x_skip = tg.Tensor(x0, requires_grad=True)    # feeds the shortcut only
    f = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x_branch)))))
    y = f + (x_skip if block.downsample is None else block.downsample(x_skip))
    y.retain_grad()
    out2 = block.relu(y)
    (out2 * v).sum().backward()
    same_forward = float(np.abs(out2.numpy() - out.numpy()).max())
    return x.grad.numpy(), y.grad.numpy(), x_branch.grad.numpy(), x_skip.grad.numpy(), same_forward


def directional_derivative(block, x0, v, d, eps=1e-7):
    """(L(x + eps d) - L(x - eps d)) / 2 eps: the numeric derivative of L along d. The step is
    small because the ReLUs have kinks: a step that moves a pre-activation across 0 adds an
    error of order eps."""
    with tg.no_grad():
        lp = (block(tg.Tensor(x0 + eps * d)) * v).sum().item()
        lm = (block(tg.Tensor(x0 - eps * d)) * v).sum().item()
    return (lp - lm) / (2 * eps)


def report(title, dx, dy, branch, skip, same_forward, identity, numeric):
    err = float(np.abs(dx - (branch + skip)).max())
    rel = err / float(np.abs(dx).max())
    print(title)
    print(f"  forward written out = block(x): max |difference| = {same_forward:.1e}")
    print(f"  |dL/dy|                         = {np.linalg.norm(dy):.6f}   (y = F(x) + shortcut(x), before the ReLU)")
    print(f"  |dL/dy * dF/dx|  (branch part)  = {np.linalg.norm(branch):.6f}")
    print(f"  |skip part|                     = {np.linalg.norm(skip):.6f}")
    print(f"  |dL/dx|          (backward())   = {np.linalg.norm(dx):.6f}")
    print(f"  max |dL/dx - (branch + skip)|   = {err:.3e}   (relative to max |dL/dx|: {rel:.1e})")
    analytic = float((dx * numeric[0]).sum())
    numeric_rel = abs(analytic - numeric[1]) / abs(numeric[1])
    print(f"  <dL/dx, d> = {analytic:.9f}, central differences: {numeric[1]:.9f} (relative {numeric_rel:.1e})")
    skip_is_dy = None
    if identity:
        skip_is_dy = float(np.abs(skip - dy).max())
        print(f"  max |skip part - dL/dy|         = {skip_is_dy:.1e}   (the identity hands dL/dy over unchanged)")
    return {"max_abs_error": err, "relative_error": rel, "forward_difference": same_forward,
            "skip_minus_dy": skip_is_dy, "numeric_relative_error": numeric_rel, "norm_dx": float(np.linalg.norm(dx)),
            "norm_dy": float(np.linalg.norm(dy)), "norm_branch": float(np.linalg.norm(branch))}


def main(argv=None):
    args = parse_args(__doc__, argv)
    N, C, H = (2, 4, 6) if args.small else (8, 16, 32)
    rng = np.random.default_rng(args.seed)
    tg.seed(args.seed)
    results = {}

    block = BasicBlock(C, C, stride=1).double()
    x0 = rng.standard_normal((N, C, H, H))
    v = rng.standard_normal((N, C, H, H))
    dx, dy, branch, skip, same = split_gradients(block, x0, v)
    d = rng.standard_normal(x0.shape)
    results["identity"] = report(f"BasicBlock({C} -> {C}, stride 1, identity shortcut), x {x0.shape} float64",
                                 dx, dy, branch, skip, same, identity=True,
                                 numeric=(d, directional_derivative(block, x0, v, d)))

    proj = BasicBlock(C, 2 * C, stride=2, shortcut="B").double()
    v2 = rng.standard_normal((N, 2 * C, H // 2, H // 2))
    p = split_gradients(proj, x0, v2)
    results["projection"] = report(f"BasicBlock({C} -> {2 * C}, stride 2, 1x1-conv shortcut B)",
                                   *p, identity=False, numeric=(d, directional_derivative(proj, x0, v2, d)))

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    k = np.arange(min(64, H * H))
    flat = lambda a: a[0, 0].reshape(-1)[:len(k)]  # noqa: E731  first image, first channel
    ax.plot(k, flat(dy), label="skip part = dL/dy", color="tab:green")
    ax.plot(k, flat(branch), label="branch part = dL/dy * dF/dx", color="tab:orange")
    ax.plot(k, flat(dx), label="dL/dx from backward()", color="black", lw=3, alpha=0.35)
    ax.plot(k, flat(branch + skip), "k.", ms=4, label="branch + skip")
    ax.set_xlabel("element of x (image 0, channel 0, row-major)")
    ax.set_ylabel("gradient")
    ax.set_title(f"Residual split, identity block: max |dL/dx - (branch + skip)| = "
                 f"{results['identity']['max_abs_error']:.1e}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = args.out / "01_residual_split.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return finish(args, results, [path])


if __name__ == "__main__":
    main()
