"""`tinygrad-yolo demo`: backpropagation through a two-layer network, one chain-rule step at a
time, with the numbers; each step is compared with what backward() computed at that op.
`demo conv` and `demo batchnorm` are the lessons in tinygrad_yolo/lessons/, in the same style."""
import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo.nn import functional as F

from . import UserError


LESSONS = ("chain", "conv", "batchnorm")


def add_arguments(parser):
    parser.add_argument("lesson", nargs="?", choices=LESSONS, default="chain",
                        help="chain: the chain rule through a two-layer network; conv: im2col, "
                             "the forward as one matrix product, dW and dx by col2im on a 3x3 "
                             "image; batchnorm: "
                             "the three paths from x to the loss and the compact formula")
    parser.add_argument("--stride", type=int, choices=(1, 2, 3), default=1,
                        help="demo conv: the convolution's stride")
    parser.add_argument("--padding", type=int, choices=(0, 1, 2), default=1,
                        help="demo conv: the zeros around the image")
    parser.add_argument("--seed", type=int, default=0,
                        help="demo chain: draws the input and the weights")
    parser.add_argument("--dot", default=None, metavar="FILE",
                        help="demo chain: also write the graph as Graphviz DOT, every tensor "
                             "with its values and gradient, and render it beside the file as "
                             "--format when Graphviz's `dot` is installed")
    parser.add_argument("--format", default="png", choices=["svg", "png"],
                        help="what `dot` renders next to the --dot file")


def _fmt(a):
    return tg.viz.format_array(np.asarray(a), precision=4, one_line=True)


def lesson_values(seed):
    """Small readable numbers (one decimal) with one ReLU input below zero and two above, so
    the lesson shows the ReLU both passing and stopping a gradient."""
    rng = np.random.default_rng(seed)
    while True:
        x = np.round(rng.uniform(-2, 2, (1, 2)), 1)
        w1 = np.round(rng.uniform(-1, 1, (3, 2)), 1)
        w2 = np.round(rng.uniform(-1, 1, (1, 3)), 1)
        z = x @ w1.T
        if (z < -0.05).sum() == 1 and (z > 0.05).sum() == 2 and np.abs(z @ w2.T - 1.0).max() > 0.1:
            return x, w1, w2, 1.0


def run(args):
    if args.lesson != "chain":
        import importlib
        return importlib.import_module(f"tinygrad_yolo.lessons.{args.lesson}").run(args)
    x0, w1_0, w2_0, t = lesson_values(args.seed)
    rec, names = forward_and_backward(x0, w1_0, w2_0, t)
    print_forward(names, t)
    worst = print_chain_rule(names, rec, t)
    print("What backward() itself did (tg.viz.record()): the ops in the order it visited them,")
    print("each one's incoming gradient and what it sent to its inputs:")
    for line in rec.trace(names).splitlines():
        print("    " + line)

    x = names["x"]
    ok = tg.gradcheck(lambda a, b: ((F.linear(F.relu(F.linear(x, a)), b) - t) ** 2).sum(),
                      [tg.Tensor(w1_0, requires_grad=True), tg.Tensor(w2_0, requires_grad=True)])
    print(f"\nby hand vs backward(): largest difference {worst:.1e}; "
          f"tg.gradcheck (float64 central differences): {'passed' if ok else 'failed'}")
    if args.dot:
        write_dot(args.dot, names, rec, args.format)
    else:
        print("More: `tinygrad-yolo demo --dot lesson.dot` draws this graph with every value and "
              "gradient; `--seed N` picks other numbers.")
    return 0 if ok and worst <= 1e-12 else 1


def forward_and_backward(x0, w1_0, w2_0, t):
    """The two-layer network's forward and backward, recorded: returns the recording and
    {name: tensor} for every tensor the lesson talks about."""
    x = tg.Tensor(x0)  # the input needs no gradient
    W1, W2 = tg.Tensor(w1_0, requires_grad=True), tg.Tensor(w2_0, requires_grad=True)
    with tg.viz.record() as rec:
        W1T, W2T = W1.T, W2.T  # named, so the trace can say which transpose is which
        z = x @ W1T            # F.linear(x, W1) is this product
        h = F.relu(z)
        y = h @ W2T
        e = y - t
        e2 = e ** 2
        L = e2.sum()
        L.backward()
    names = {"x": x, "W1": W1, "W2": W2, "W1.T": W1T, "W2.T": W2T, "z": z, "h": h, "y": y,
             "y - t": e, "(y - t)^2": e2, "L": L}
    return rec, names


def print_forward(names, t):
    print("Backpropagation through a two-layer network, one step at a time.\n")
    print("The network, for one input x (1 x 2) and its target t:")
    print("    z = x W1.T      (1 x 3)  first layer, W1 is 3 x 2")
    print("    h = relu(z)     (1 x 3)")
    print("    y = h W2.T      (1 x 1)  second layer, W2 is 1 x 3")
    print("    L = (y - t)^2            the loss\n")
    print("Forward:")
    print(f"    x  = {_fmt(names['x'].numpy())}    t = {t:g}")
    print(f"    W1 = {_fmt(names['W1'].numpy())}")
    print(f"    W2 = {_fmt(names['W2'].numpy())}")
    print(f"    z  = x W1.T    = {_fmt(names['z'].numpy())}")
    print(f"    h  = relu(z)   = {_fmt(names['h'].numpy())}    (relu(z) = max(z, 0))")
    print(f"    y  = h W2.T    = {_fmt(names['y'].numpy())}")
    print(f"    L  = (y - t)^2 = {names['L'].item():.4g}\n")


def print_chain_rule(names, rec, t):
    """The chain rule by hand, in the order backward() takes it, each step beside what
    backward() computed; returns the largest difference between the two."""
    # Each gradient is the local derivative of one op times the gradient from above.
    x0, w2_0, zs, hs, ys = (names[k].numpy() for k in ("x", "W2", "z", "h", "y"))
    dy = 2 * (ys - t)
    dW2 = dy.T @ hs
    dh = dy @ w2_0
    dz = dh * (zs > 0)
    dW1 = dz.T @ x0
    steps = [("dL/dy ", "2 (y - t)", dy, rec.grad(names["y"]), ""),
             ("dL/dW2", "dL/dy.T h", dW2, rec.grad(names["W2"]),
              "a weight: used in one place, so this is all of it"),
             ("dL/dh ", "dL/dy W2", dh, rec.grad(names["h"]), ""),
             ("dL/dz ", "dL/dh * [z > 0]", dz, rec.grad(names["z"]),
              "[z > 0] is 1 where z > 0, else 0: the ReLU passes the gradient where z > 0 "
              "and stops it where z <= 0"),
             ("dL/dW1", "dL/dz.T x", dW1, rec.grad(names["W1"]), "")]
    print("Backward, the chain rule from L down to the weights (dL/dL = 1 to start):")
    worst = 0.0
    for name, rule, by_hand, engine, note in steps:
        diff = float(np.abs(by_hand - engine).max())
        worst = max(worst, diff)
        same = "   (the same)" if diff <= 1e-12 else f"   DIFFERENT by {diff:.2e}"
        print(f"    {name} = {rule:<16} = {_fmt(by_hand)}" + (f"    {note}" if note else ""))
        print(f"    {'':6}   backward() had  {_fmt(engine)}" + same)
    print("    dL/dx would be dL/dz W1, but x does not require a gradient, so backward() never "
          "computes it.\n")
    return worst


def write_dot(path, names, rec, fmt="png"):
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(tg.viz.to_dot(names["L"], names, record=rec,
                                  title="two-layer network: values and gradients"))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e}") from None
    print(f"wrote {path}")
    from .graph import render
    render(path, fmt)
