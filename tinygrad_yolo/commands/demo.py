"""`tinygrad-yolo demo`: a two-layer network's gradients, from backward() and by hand."""
import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo.nn import functional as F


def add_arguments(parser):
    parser.add_argument("--seed", type=int, default=0)


def run(args):
    rng = np.random.default_rng(args.seed)
    x = tg.Tensor(rng.standard_normal((4, 3)))
    w1 = tg.Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w2 = tg.Tensor(rng.standard_normal((1, 5)), requires_grad=True)
    h = F.relu(F.linear(x, w1))
    loss = (F.linear(h, w2) ** 2).mean()
    loss.backward()

    # The same gradients by hand: the chain rule written out.
    xa, w1a, w2a = x.numpy(), w1.numpy(), w2.numpy()
    pre = xa @ w1a.T
    ha = np.maximum(pre, 0)
    ya = ha @ w2a.T
    dy = 2 * ya / ya.size
    dw2 = dy.T @ ha
    dw1 = ((dy @ w2a) * (pre > 0)).T @ xa
    print(f"loss = {loss.item():.6f}")
    for name, auto, hand in (("w1", w1.grad.numpy(), dw1), ("w2", w2.grad.numpy(), dw2)):
        print(f"d loss / d {name}: max |backward() - by hand| = {np.abs(auto - hand).max():.2e}")
    ok = tg.gradcheck(lambda a, b: (F.linear(F.relu(F.linear(x, a)), b) ** 2).mean(),
                      [tg.Tensor(w1a, requires_grad=True), tg.Tensor(w2a, requires_grad=True)])
    print(f"tg.gradcheck (float64 central differences): {'passed' if ok else 'failed'}")
    return 0
