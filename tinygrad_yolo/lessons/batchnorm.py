"""`tinygrad-yolo demo batchnorm`: batch normalisation's backward by hand on four numbers (one
channel, a batch of four). Each x_i reaches the loss by three paths: through its own x̂_i,
through the mean (which every x̂_j subtracts) and through the variance (which every x̂_j divides
by). The lesson computes each path, adds them, derives the compact formula that ops/norm.py
uses, and compares both with what backward() computed."""
import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo.nn import functional as F

from . import compare, fmt, num

X = np.array([-2.0, 4.0, 6.0, 12.0])  # mean 5, variance 25: x̂ comes out in tenths
GAMMA, BETA = 2.0, 1.0
G = np.array([1.0, -1.0, 0.0, 2.0])  # dL/dy, from above (L = sum(G * y))


def engine_gradients():
    """x.grad, γ.grad and β.grad from F.batch_norm's backward (eps = 0, so the numbers stay
    round), and from the same normalisation written with primitive Tensor ops."""
    x = tg.Tensor(X[:, None].copy(), requires_grad=True)  # (N, C) = (4, 1)
    gamma, beta = tg.Tensor(np.array([GAMMA]), requires_grad=True), tg.Tensor(np.array([BETA]),
                                                                              requires_grad=True)
    y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=0.0)
    (y * tg.Tensor(G[:, None])).sum().backward()
    xs = tg.Tensor(X.copy(), requires_grad=True)
    centred = xs - xs.mean()
    y2 = GAMMA * centred / ((centred ** 2).mean()).sqrt() + BETA
    (y2 * tg.Tensor(G)).sum().backward()
    return x.grad.numpy()[:, 0], gamma.grad.numpy()[0], beta.grad.numpy()[0], xs.grad.numpy()


def run(args):
    m, mu = len(X), X.mean()
    var = ((X - mu) ** 2).mean()
    sigma = np.sqrt(var)
    x_hat = (X - mu) / sigma
    print_forward(m, mu, var, sigma, x_hat)
    dx_engine, dgamma_engine, dbeta_engine, dx_primitive = engine_gradients()

    print("\nBackward, with dL/dy = g from above (L = sum(g * y)):")
    print(f"    g = {fmt(G)}")
    dbeta, dgamma = G.sum(), (G * x_hat).sum()
    print(f"    dL/dβ = Σ g = {num(dbeta)}            dL/dγ = Σ g·x̂ = {num(dgamma)}")
    worst = compare("backward() had dL/dβ", dbeta, dbeta_engine)
    worst = max(worst, compare("backward() had dL/dγ", dgamma, dgamma_engine))
    d_hat = GAMMA * G
    print(f"    dL/dx̂ = γ g = {fmt(d_hat)}")
    paths = print_paths(m, mu, sigma, x_hat, d_hat)
    dx = sum(paths)
    print(f"    the three paths added: dL/dx = {fmt(dx)}")
    worst = max(worst, compare("F.batch_norm's backward()", dx, dx_engine))
    print("    the same normalisation written with primitive ops (x - x.mean(), ** 2, .mean(),")
    print("    .sqrt(), /): x is used three times, and backward() adds the three parts:")
    worst = max(worst, compare("primitive ops' backward()", dx, dx_primitive))
    worst = max(worst, print_compact(m, sigma, x_hat, paths, dx))
    print(f"\nby hand vs the engine: largest difference {worst:.1e}.")
    print(f"dL/dx sums to {num(round(dx.sum(), 12))}: shifting every x by the same amount "
          "changes nothing after the\nnormalisation, so no gradient can point that way.")
    return 0 if worst <= 1e-12 else 1


def print_forward(m, mu, var, sigma, x_hat):
    print("Batch normalisation by hand: one channel, a batch of m = 4 numbers.\n")
    print("Forward (eps = 0 here so the numbers stay round; the library's default is 1e-5):")
    print(f"    x          = {fmt(X)}")
    print(f"    mean  μ    = Σ x / m = {num(X.sum())} / {m} = {num(mu)}")
    print(f"    var   σ²   = Σ (x - μ)² / m = {num(((X - mu) ** 2).sum())} / {m} = {num(var)}"
          f"      σ = {num(sigma)}")
    print(f"    x̂          = (x - μ) / σ = {fmt(x_hat)}")
    print(f"    y          = γ x̂ + β     = {fmt(GAMMA * x_hat + BETA)}      "
          f"(γ = {num(GAMMA)}, β = {num(BETA)})")


def print_paths(m, mu, sigma, x_hat, d_hat):
    """The three ways x_i moves the loss, each by the chain rule; returns the three arrays."""
    direct = d_hat / sigma
    d_mu = -(d_hat / sigma).sum()
    via_mean = np.full(m, d_mu / m)
    d_var = (d_hat * (X - mu)).sum() * (-0.5) * sigma ** -3
    via_var = d_var * 2 * (X - mu) / m
    print("x_i reaches the loss by three paths:")
    print("  1. directly: x̂_i = (x_i - μ)/σ, so ∂x̂_i/∂x_i = 1/σ (μ and σ held fixed):")
    print(f"       dL/dx̂_i / σ                          = {fmt(direct)}")
    print("  2. through the mean: every x̂_j subtracts μ, so dL/dμ = Σ_j dL/dx̂_j · (-1/σ) "
          f"= {num(d_mu)},")
    print("     and ∂μ/∂x_i = 1/m:")
    print(f"       dL/dμ / m                            = {fmt(via_mean)}")
    print("  3. through the variance: every x̂_j divides by σ = sqrt(σ²), so")
    print(f"     dL/dσ² = Σ_j dL/dx̂_j (x_j - μ) · (-1/2) σ⁻³ = {num(d_var)}, and "
          "∂σ²/∂x_i = 2(x_i - μ)/m:")
    print(f"       dL/dσ² · 2(x_i - μ)/m                = {fmt(via_var)}")
    print("     (σ² also depends on μ, but ∂σ²/∂μ = -2 Σ (x_j - μ)/m = 0: no fourth path)")
    return direct, via_mean, via_var


def print_compact(m, sigma, x_hat, paths, dx):
    """The three paths rewritten with dL/dβ and dL/dγ: the formula ops/norm.py computes."""
    direct, via_mean, via_var = paths
    print("\nThe compact formula. With dL/dx̂ = γ g, path 2 is "
          "-(γ/σ) Σg / m = -(γ/σ) dL/dβ / m,")
    print("and since (x_j - μ)/σ = x̂_j, path 3 is "
          "-(γ/σ) x̂_i Σ(g·x̂) / m = -(γ/σ) x̂_i dL/dγ / m.")
    print("Adding path 1, (γ/σ) g_i:")
    print("    dL/dx = (γ/σ) (g - dL/dβ / m - x̂ · dL/dγ / m)"
          "      (ops/norm.py, BatchNorm.backward)")
    dbeta, dgamma = G.sum(), (G * x_hat).sum()
    compact = GAMMA / sigma * (G - dbeta / m - x_hat * dgamma / m)
    print(f"          = ({num(GAMMA)}/{num(sigma)}) ({fmt(G)} - {num(dbeta)}/{m} - x̂ · "
          f"{num(dgamma)}/{m}) = {fmt(compact)}")
    worst = compare("the three paths gave", compact, dx)
    for name, path, formula in (("path 2", via_mean, -GAMMA / sigma * dbeta / m),
                                ("path 3", via_var, -GAMMA / sigma * x_hat * dgamma / m)):
        worst = max(worst, compare(f"{name} by the formula", path, formula, show=False))
    return worst
