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
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

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


def elementwise_derivatives(block, x0, v, indices, eps=1e-5):
    """dL/dx at each index by central differences: one element of x moved at a time (a larger
    step than along a random direction: one element moves few pre-activations, and the
    rounding error of L, divided by the step, is the larger error here)."""
    out = []
    for index in indices:
        d = np.zeros_like(x0)
        d[index] = 1.0
        out.append(directional_derivative(block, x0, v, d, eps))
    return np.array(out)


def report(title, dx, dy, branch, skip, same_forward, identity, numeric):
    err = float(np.abs(dx - (branch + skip)).max())
    rel = err / float(np.abs(dx).max())
    print(title)
    print(f"  forward written out = block(x): max |difference| = {same_forward:.1e}")
    print(f"  |dL/dy|                         = {np.linalg.norm(dy):.6f}   "
          f"(y = F(x) + shortcut(x), before the ReLU)")
    print(f"  |dL/dy * dF/dx|  (branch part)  = {np.linalg.norm(branch):.6f}")
    print(f"  |skip part|                     = {np.linalg.norm(skip):.6f}")
    print(f"  |dL/dx|          (backward())   = {np.linalg.norm(dx):.6f}")
    print(f"  max |dL/dx - (branch + skip)|   = {err:.3e}   "
          f"(relative to max |dL/dx|: {rel:.1e})")
    analytic = float((dx * numeric[0]).sum())
    numeric_rel = abs(analytic - numeric[1]) / abs(numeric[1])
    print(f"  <dL/dx, d> = {analytic:.9f}, central differences: {numeric[1]:.9f} "
          f"(relative {numeric_rel:.1e})")
    skip_is_dy = None
    if identity:
        skip_is_dy = float(np.abs(skip - dy).max())
        print(f"  max |skip part - dL/dy|         = {skip_is_dy:.1e}   "
              f"(the identity hands dL/dy over unchanged)")
    return {"max_abs_error": err, "relative_error": rel, "forward_difference": same_forward,
            "skip_minus_dy": skip_is_dy, "numeric_relative_error": numeric_rel,
            "norm_dx": float(np.linalg.norm(dx)), "norm_dy": float(np.linalg.norm(dy)),
            "norm_branch": float(np.linalg.norm(branch))}


def main(argv=None):
    args = parse_args(__doc__, argv)
    N, C, H = (2, 4, 6) if args.quick else (4, 8, 16)
    rng = np.random.default_rng(args.seed)
    tg.seed(args.seed)
    results = {"x_shape": [N, C, H, H]}

    block = BasicBlock(C, C, stride=1).double()
    x0 = rng.standard_normal((N, C, H, H))
    v = rng.standard_normal((N, C, H, H))
    dx, dy, branch, skip, same = split_gradients(block, x0, v)
    d = rng.standard_normal(x0.shape)
    results["identity"] = report(
        f"BasicBlock({C} -> {C}, stride 1, identity shortcut), x {x0.shape} float64",
        dx, dy, branch, skip, same, identity=True,
        numeric=(d, directional_derivative(block, x0, v, d)))

    proj = BasicBlock(C, 2 * C, stride=2, shortcut="B").double()
    v2 = rng.standard_normal((N, 2 * C, H // 2, H // 2))
    p = split_gradients(proj, x0, v2)
    results["projection"] = report(f"BasicBlock({C} -> {2 * C}, stride 2, 1x1-conv shortcut B)",
                                   *p, identity=False,
                                   numeric=(d, directional_derivative(proj, x0, v2, d)))

    # The figure's elements: image 0, channel 0, the first rows (row-major), one at a time.
    indices = [(0, 0, i // H, i % H) for i in range(min(64, H * H))]
    flat = {name: np.array([a[i] for i in indices])
            for name, a in (("dx", dx), ("dy", dy), ("branch", branch), ("skip", skip))}
    numeric = elementwise_derivatives(block, x0, v, indices)
    results["elements"] = report_elements(flat, numeric)
    path = draw_figure(args.out / "01_residual_split.png", flat, numeric, results)
    return finish(args, results, [path], "01_residual_split")


def report_elements(flat, numeric):
    """backward() against central differences on the figure's elements, and where the final
    ReLU is off: there the skip part is 0 and the branch part is not."""
    count = len(numeric)
    element_rel = float(np.abs(flat["dx"] - numeric).max() / np.abs(numeric).max())
    relu_off = flat["dy"] == 0  # dL/dy = v * [y > 0]: zero exactly where the final ReLU is off
    branch_on = int((flat["branch"][relu_off] != 0).sum())
    print(f"the figure's {count} elements of x, each moved alone: backward() vs central "
          f"differences, max error {element_rel:.1e} of max |dL/dx|")
    print(f"  {int(relu_off.sum())} of them have y <= 0 (the final ReLU is off): there dL/dy = 0, "
          f"so the skip part is 0, while the branch part is not in {branch_on} of them")
    return {"count": count, "max_relative_error": element_rel, "relu_off": int(relu_off.sum()),
            "branch_nonzero_where_off": branch_on}


def draw_figure(path, flat, numeric, results):
    """Left: the three gradients of each element, the final ReLU's off elements shaded; right:
    backward() against central differences."""
    dx, dy, branch, skip = flat["dx"], flat["dy"], flat["branch"], flat["skip"]
    k = np.arange(len(numeric))
    relu_off = dy == 0
    plt = pyplot()
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [2.6, 1]})
    for i in np.nonzero(relu_off)[0]:
        label = "final ReLU off (y <= 0)" if i == relu_off.argmax() else None
        ax.axvspan(i - 0.5, i + 0.5, color="0.9", lw=0, label=label)
    for offset, values, color, label in ((-0.25, dy, "tab:green", "skip part = dL/dy"),
                                         (0.0, branch, "tab:orange", "branch part = dL/dy * dF/dx"),
                                         (0.25, dx, "black", "dL/dx from backward()")):
        ax.vlines(k + offset, 0, values, color=color, lw=1.4)
        ax.plot(k + offset, values, "o", ms=3.2, color=color, label=label)
    ax.plot(k + 0.25, branch + skip, "o", ms=7, mfc="none", mec="tab:purple", mew=1,
            label="branch + skip (circles the black dot)")
    ax.axhline(0, color="0.4", lw=0.6)
    top = max(dx.max(), dy.max(), branch.max())
    bottom = min(dx.min(), dy.min(), branch.min())
    ax.set_ylim(None, top + 0.45 * (top - bottom))  # room for the legend
    ax.set_xlim(-0.8, len(k) - 0.2)
    ax.set_xlabel("element of x (image 0, channel 0, row-major); three stems per element")
    ax.set_ylabel("gradient")
    ax.set_title(f"Identity block: dL/dx = branch part + skip part, max |difference| = "
                 f"{results['identity']['max_abs_error']:.1e}", fontsize=10)
    ax.legend(fontsize=7.5, ncol=3, loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    lim = 1.08 * max(np.abs(numeric).max(), np.abs(dx).max())
    axn.plot([-lim, lim], [-lim, lim], color="0.7", lw=1, zorder=0)
    axn.plot(numeric, dx, "o", ms=4, color="black")
    axn.set_xlim(-lim, lim)
    axn.set_ylim(-lim, lim)
    axn.set_aspect("equal")
    axn.set_xlabel("central difference (x_k moved by ±1e-5)")
    axn.set_ylabel("dL/dx_k from backward()")
    axn.set_title(f"analytic vs numeric, {len(k)} elements:\nlargest error "
                  f"{results['elements']['max_relative_error']:.1e} of max |dL/dx|", fontsize=10)
    axn.grid(alpha=0.3)
    fig.text(0.01, 0.01,
             "Grey: the block's final ReLU is off (y = F(x) + x <= 0), so dL/dy = 0 and the skip "
             "part is exactly 0: the ReLU after the addition gates the 'pure' skip gradient "
             "too\n(the pre-activation ResNet moves that ReLU into the branch). The branch part is "
             "not 0 there: the 3x3 convolutions bring in gradient from the neighbouring pixels.\n"
             "L = sum(v * block(x)) for a random v; float64, BatchNorm in training mode.",
             fontsize=8, va="bottom")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
