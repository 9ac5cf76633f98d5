"""Demo 5 - the super-resolution analogy: learning the difference is easier than learning the
whole thing.

Super-resolution takes an upsampled low-resolution image x and should output the sharp
image y. The two are already close, so a network that outputs x + f(x) (like VDSR) only
has to learn the small residual y - x, while one that outputs f(x) must first learn to copy
x through all its layers. A residual block's F(x) + x makes the same bet: the identity is
the default and the layers learn a correction.

Two identical small conv nets (conv3x3-ReLU x 3, then conv3x3 to 3 channels, no
normalisation), same init, same data, same optimizer (Adam):
  direct:    y_hat = f(x)
  residual:  y_hat = x + f(x)
Data: synthetic shape images (sharp edges), downsampled 2x by averaging and upsampled
back bilinearly. Printed: the training loss (MSE) over the steps, the MSE of the input
itself (doing nothing), and both nets' MSE on held-out images. The sample figure puts the
true residual y - x beside the learned one, f(x) of the residual net: what it had to learn,
and what it did learn (edges only: everything else is already in x).
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np
from PIL import Image

from demo_common import finish, parse_args, pyplot, shape_images, tg, to_uint8_image
from tinygrad_yolo import nn, optim
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.viz import plot_curves


def degrade(images):
    """2x2 average pooling, then bilinear upsampling back to the original size."""
    n, c, h, w = images.shape
    low = images.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    up = np.empty_like(images)
    for i in range(n):
        for ch in range(c):
            up[i, ch] = np.asarray(Image.fromarray(low[i, ch], "F").resize((w, h), Image.BILINEAR))
    return up


class SmallSR(nn.Module):
    def __init__(self, residual, width):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x):
        out = self.body(x)
        return x + out if self.residual else out


def train(residual, data, steps, batch, width, seed, lr=1e-3):
    x_train, y_train = data
    tg.seed(seed)  # the same initial weights for both nets
    net = SmallSR(residual, width)
    opt = optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        idx = rng.integers(0, len(x_train), batch)
        loss = F.mse_loss(net(tg.Tensor(x_train[idx])), tg.Tensor(y_train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, np.array(losses)


def strongest_channel(diff):
    """A signed (3, H, W) difference as one (H, W) map: per pixel, the colour channel that
    changes most (a mean over the channels would cancel a red edge against a green one)."""
    pick = np.abs(diff).argmax(axis=0)[None]
    return np.take_along_axis(diff, pick, axis=0)[0]


def signed_image(ax, diff, vmax):
    return ax.imshow(strongest_channel(diff), cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                     interpolation="nearest")


def main(argv=None):
    args = parse_args(__doc__, argv)
    # n_train, n_test, size, steps, batch, width
    if args.smoke:
        n_train, n_test, size, steps, batch, width = 32, 4, 24, 20, 8, 8
    elif args.quick:
        n_train, n_test, size, steps, batch, width = 128, 8, 24, 150, 8, 16
    else:
        n_train, n_test, size, steps, batch, width = 512, 64, 32, 400, 16, 32
    rng = np.random.default_rng(args.seed)
    # difficulty 0.1: little pixel noise, which no upsampler could restore anyway
    y_all, _, _ = shape_images(n_train + n_test, size, rng, max_objects=4, min_size=0.2,
                               max_size=0.5, difficulty=0.1)
    x_all = degrade(y_all)
    train_data = (x_all[:n_train], y_all[:n_train])
    x_test, y_test = x_all[n_train:], y_all[n_train:]
    baseline = float(((x_test - y_test) ** 2).mean())
    print(f"data: {n_train} training / {n_test} held-out images {size}x{size}, 2x downsampled "
          f"and upsampled; {steps} steps of batch {batch}, Adam lr 1e-3, conv width {width}")
    print(f"MSE of the upsampled input itself (no network): {baseline:.5f}")

    curves, results = {}, {"input_mse": baseline, "steps": steps}
    outputs = {}
    for name, residual in (("direct: f(x)", False), ("residual: x + f(x)", True)):
        net, losses = train(residual, train_data, steps, batch, width, args.seed)
        with tg.no_grad():
            pred = net(tg.Tensor(x_test)).numpy()
        test_mse = float(((pred - y_test) ** 2).mean())
        outputs[name] = pred
        curves[name] = losses
        k = max(1, steps // 10)
        key = "residual" if residual else "direct"
        results[key] = {"first_loss": float(losses[0]), "final_loss": float(losses[-k:].mean()),
                        "test_mse": test_mse, "losses": losses.tolist()}
        print(f"  {name:<20} training loss: step 1 {losses[0]:.5f} -> last {k} steps "
              f"{losses[-k:].mean():.5f};  held-out MSE {test_mse:.5f} "
              f"({'below' if test_mse < baseline else 'above'} the input's)")
    ratio = results["direct"]["test_mse"] / results["residual"]["test_mse"]
    results["direct_over_residual"] = ratio
    print(f"held-out MSE, direct / residual = {ratio:.2f}")
    # How much of the true residual y - x the residual net's f(x) explains, on held-out images
    true_res, learned = y_test - x_test, outputs["residual: x + f(x)"] - x_test
    explained = 1 - float(((true_res - learned) ** 2).sum() / (true_res ** 2).sum())
    results["residual_explained"] = explained
    print(f"the residual net's f(x) explains {explained:.0%} of the true residual y - x "
          f"(1 - |y - x - f(x)|^2 / |y - x|^2, held-out)")

    curves["input (no network)"] = ([0, steps - 1], [baseline, baseline])
    curve_path = plot_curves(curves, args.out / "05_superres_curves.png", xlabel="step",
                             ylabel="training MSE (each step's batch)",
                             title="Super-resolution: learning the residual vs the whole image",
                             logy=True)
    columns = (("input x (upsampled)", x_test), ("target y", y_test),
               ("direct net f(x)", outputs["direct: f(x)"]),
               ("residual net x + f(x)", outputs["residual: x + f(x)"]))
    sample_path = draw_samples(args.out / "05_superres_samples.png", columns, true_res, learned,
                               steps, explained)
    return finish(args, results, [curve_path, sample_path], "05_superres_residual")


def draw_samples(path, columns, true_res, learned, steps, explained):
    """Held-out images, one per row: ``columns`` [(title, images)], then the true and the
    learned residual on one colour scale."""
    plt = pyplot()
    rows = min(4, len(true_res))
    fig, axes = plt.subplots(rows, 7, figsize=(13.5, 2.1 * rows + 0.7), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * 6 + [0.08]})
    vmax = float(np.abs(true_res[:rows]).max())
    for r in range(rows):
        for c, (title, imgs) in enumerate(columns):
            axes[r, c].imshow(to_uint8_image(imgs[r]), interpolation="nearest")
        signed_image(axes[r, 4], true_res[r], vmax)
        im = signed_image(axes[r, 5], learned[r], vmax)
    titles = [t for t, _ in columns] + ["true residual y - x", "learned residual f(x)"]
    for c, title in enumerate(titles):
        axes[0, c].set_title(title, fontsize=9)
    for ax in axes[:, :6].flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[1:, 6]:
        ax.remove()
    fig.colorbar(im, cax=axes[0, 6],
                 label="signed; per pixel, the colour\nchannel that changes most")
    fig.suptitle(f"Held-out images after {steps} steps: what the residual net must learn is the "
                 f"edges, the rest is already in x. Its f(x) explains {explained:.0%} of y - x "
                 f"(same colour scale)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
