"""Demo 2 - the identity default: a residual block whose branch is switched off outputs its
input exactly, and passes the gradient through unchanged.

BasicBlock(zero_init_residual=True) sets the scale of the branch's last BatchNorm to 0, so
F(x) = 0 * x_hat + 0 = 0 exactly and the block computes relu(0 + x). Inside a ResNet a
block's input comes out of a ReLU (x >= 0), so relu(x) = x: the block is the identity,
bit for bit, and so is a whole stage of such blocks. A network built this way starts as a
shallow one and each block learns a correction to the identity.

Backward, the gradient reaching x is dL/dy * dF/dx + dL/dy. The branch part is exactly 0
(the zero BN scale multiplies it), so dL/dx = dL/dy wherever x > 0. (Where x = 0 the
block's final ReLU passes nothing, but neither did the ReLU that produced x.) The branch
still learns: its last BN scale gets a non-zero gradient, so the first update turns it on.

For contrast: the same block without its shortcut (a "plain" block, residual=False) with the
same zero init outputs 0 and passes no gradient at all; a residual block with the default
init (BN scale 1) is nowhere near the identity.
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np

from demo_common import finish, parse_args, pyplot, tg
from tinygrad_yolo.models import BasicBlock, CifarResNet


def run_block(module, x0, v):
    """(output, dL/dx) for L = sum(v * module(x))."""
    x = tg.Tensor(x0, requires_grad=True)
    out = module(x)
    (out * v).sum().backward()
    return out.numpy(), x.grad.numpy()


def main(argv=None):
    args = parse_args(__doc__, argv)
    N, C, H = (2, 4, 6) if args.quick else (8, 16, 32)
    rng = np.random.default_rng(args.seed)
    tg.seed(args.seed)
    x0 = np.maximum(rng.standard_normal((N, C, H, H)), 0)  # a ReLU's output, as inside a ResNet
    v = rng.standard_normal((N, C, H, H))                    # L = sum(v * out): dL/d(out) = v
    results = {}
    block = check_block(x0, v, results)
    check_stage(args.seed, rng, N, H, results)

    # Contrasts.
    tg.seed(args.seed)
    plain = BasicBlock(C, C, zero_init_residual=True, residual=False).double()
    out_plain, dx_plain = run_block(plain, x0, v)
    tg.seed(args.seed)
    default = BasicBlock(C, C).double()
    out_default, _ = run_block(default, x0, v)
    results["plain_output_max"] = float(np.abs(out_plain).max())
    results["plain_grad_max"] = float(np.abs(dx_plain).max())
    results["default_init_output_minus_input"] = float(np.abs(out_default - x0).max())
    print(f"plain block (residual=False), same zero init: max |output| = "
          f"{results['plain_output_max']:.1e}, max |dL/dx| = {results['plain_grad_max']:.1e}")
    print(f"residual block, default init (BN scale 1):    max |block(x) - x| = "
          f"{results['default_init_output_minus_input']:.3f}")

    out_zero, dx_zero = run_block(block, x0, v)
    path = draw_figure(args.out / "02_identity_default.png", rng, x0, v,
                       {"residual, default init (BN scale 1)": (out_default, None),
                        "residual, zero init": (out_zero, dx_zero),
                        "plain, zero init": (out_plain, dx_plain)})
    return finish(args, results, [path], "02_identity_default")


def check_block(x0, v, results):
    """One zero-init block: its output is x, its input gradient dL/dy where x > 0; returns it."""
    C = x0.shape[1]
    positive = x0 > 0
    block = BasicBlock(C, C, zero_init_residual=True).double()
    out, dx = run_block(block, x0, v)
    results["output_minus_input"] = float(np.abs(out - x0).max())
    results["grad_minus_upstream_where_positive"] = float(np.abs(dx - v)[positive].max())
    results["grad_where_zero"] = float(np.abs(dx[~positive]).max()) if (~positive).any() else 0.0
    grads = {name: float(np.linalg.norm(p.grad.numpy())) for name, p in block.named_parameters()}
    print(f"BasicBlock({C} -> {C}, zero_init_residual=True), x = relu(noise) {x0.shape} float64")
    print(f"  max |block(x) - x|                    = {results['output_minus_input']:.1e}")
    print(f"  max |dL/dx - dL/dy| where x > 0       = "
          f"{results['grad_minus_upstream_where_positive']:.1e}"
          f"   ({positive.mean():.0%} of the elements)")
    print(f"  max |dL/dx| where x = 0               = {results['grad_where_zero']:.1e}")
    print("  parameter gradients: " + ", ".join(f"|d {k}| = {g:.3g}" for k, g in grads.items()))
    results["param_grad_norms"] = grads
    return block


def check_stage(seed, rng, N, H, results):
    """A whole stage: layer1 of a ResNet-56 is nine such blocks in a row."""
    tg.seed(seed)
    net = CifarResNet(56, num_classes=10, zero_init_residual=True).double()
    x_stage = np.maximum(rng.standard_normal((N, 16, H, H)), 0)  # layer1 works on 16 channels
    v_stage = rng.standard_normal(x_stage.shape)
    out, dx = run_block(net.layer1, x_stage, v_stage)
    results["stage_output_minus_input"] = float(np.abs(out - x_stage).max())
    results["stage_grad_minus_upstream_where_positive"] = float(
        np.abs(dx - v_stage)[x_stage > 0].max())
    print(f"ResNet-56 layer1 ({len(net.layer1)} blocks, zero_init_residual=True):")
    print(f"  max |layer1(x) - x|                   = {results['stage_output_minus_input']:.1e}")
    print(f"  max |dL/dx - dL/dy| where x > 0       = "
          f"{results['stage_grad_minus_upstream_where_positive']:.1e}")


def draw_figure(path, rng, x0, v, runs):
    """Left: each block's output against its input; right: dL/dx against dL/dy. ``runs``:
    {label: (output, dL/dx or None)}."""
    out_default = runs["residual, default init (BN scale 1)"][0]
    out_zero, dx_zero = runs["residual, zero init"]
    out_plain, dx_plain = runs["plain, zero init"]
    positive = x0 > 0
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    xs = x0.reshape(-1)
    pick = rng.choice(xs.size, size=min(2000, xs.size), replace=False)
    # The plain block's points lie exactly on y = 0, under the residual block's points at x = 0:
    # they are drawn shifted down (and said so), so that neither set hides the other.
    shift = 0.08 * float(max(np.abs(out_default).max(), np.abs(v).max()))
    plain_label = f"plain, zero init (all 0; drawn {shift:.2g} lower)"
    for label, y, color, offset in (("residual, default init (BN scale 1)", out_default,
                                     "tab:orange", 0.0),
                                    ("residual, zero init", out_zero, "tab:blue", 0.0),
                                    (plain_label, out_plain, "tab:red", -shift)):
        axes[0].plot(xs[pick], y.reshape(-1)[pick] + offset, ".", ms=3, color=color, label=label,
                     alpha=0.6)
    axes[0].set_xlabel("x (a ReLU's output, so >= 0)")
    axes[0].set_ylabel("block(x)")
    axes[0].set_title("forward: the zero-init residual block is y = x exactly", fontsize=10)
    axes[0].legend(fontsize=8)
    vs = v.reshape(-1)[pick]
    on = positive.reshape(-1)[pick]
    axes[1].plot(vs[on], dx_zero.reshape(-1)[pick][on], ".", ms=3, color="tab:blue", alpha=0.6,
                 label="residual, zero init, where x > 0: dL/dx = dL/dy")
    axes[1].plot(vs[~on], dx_zero.reshape(-1)[pick][~on], ".", ms=3, color="tab:cyan", alpha=0.6,
                 label="residual, zero init, where x = 0: the final ReLU stops it")
    axes[1].plot(vs, dx_plain.reshape(-1)[pick] - shift, ".", ms=3, color="tab:red", alpha=0.6,
                 label=plain_label)
    axes[1].set_xlabel("dL/dy (upstream gradient)")
    axes[1].set_ylabel("dL/dx")
    axes[1].set_title("backward: the gradient passes unchanged, or not at all", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
