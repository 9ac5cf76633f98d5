"""`tinygrad-yolo demo conv`: one convolution by hand. A 1x1x3x3 input whose pixels are 1..9 (so
every entry of the column matrix says which pixel it was read from, and 0 is padding), a 2x2
kernel, a stride and a padding; the column matrix, the forward as one matrix product, dW as a
product with the columns and dx by col2im, every number, each compared with backward()."""
import numpy as np

import tinygrad_yolo as tg
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.ops.im2col import im2col

from . import compare, fmt, num, times

X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
W = np.array([[[[1.0, -1.0], [2.0, 1.0]]]])  # (K, C, R, S) = (1, 1, 2, 2)
# dL/dy, the gradient arriving from above (L = sum(G * y), so dL/dy is exactly G)
G_VALUES = [1, 0, -1, 2, 0, 1, 1, -1, 2, 0, 1, 0, -1, 0, 1, 1]


def output_size(n, k, stride, pad):
    return (n + 2 * pad - k) // stride + 1


def columns(x, sh, ph, Ho, Wo):
    """col[(r, s), (oy, ox)] = x[oy*sh - ph + r, ox*sh - ph + s], 0 outside the image: the read
    rule written as loops, one row per kernel tap, one column per output pixel."""
    H, Wd = x.shape
    col = np.zeros((4, Ho * Wo))
    for r in range(2):
        for s in range(2):
            for oy in range(Ho):
                for ox in range(Wo):
                    y, xx = oy * sh - ph + r, ox * sh - ph + s
                    if 0 <= y < H and 0 <= xx < Wd:
                        col[r * 2 + s, oy * Wo + ox] = x[y, xx]
    return col


def run(args):
    sh, ph = args.stride, args.padding  # argparse's choices: at least one output pixel
    Ho = Wo = output_size(3, 2, sh, ph)
    G = np.resize(np.array(G_VALUES, dtype=np.float64), Ho * Wo).reshape(Ho, Wo)
    x_t, w_t = tg.Tensor(X.copy(), requires_grad=True), tg.Tensor(W.copy(), requires_grad=True)
    y_t = F.conv2d(x_t, w_t, stride=sh, padding=ph)
    (y_t * tg.Tensor(G[None, None])).sum().backward()

    print_setup(sh, ph, Ho, Wo)
    col = columns(X[0, 0], sh, ph, Ho, Wo)
    print_columns(col, Ho, Wo)
    worst = compare("tg's im2col(x) has", col, im2col(X, 2, 2, sh, ph).reshape(4, Ho * Wo),
                    show=False)
    y = W.reshape(1, 4) @ col
    print_forward(col, y, Ho, Wo)
    worst = max(worst, compare("F.conv2d(x, w) gave", y.reshape(Ho, Wo), y_t.numpy()[0, 0]))
    dW = print_weight_gradient(col, G, Ho, Wo)
    worst = max(worst, compare("backward() left w.grad", dW, w_t.grad.numpy()[0, 0]))
    dx = print_input_gradient(G, sh, ph, Ho, Wo)
    worst = max(worst, compare("backward() left x.grad", dx, x_t.grad.numpy()[0, 0]))
    other = "--stride 2" if sh == 1 else "--stride 1"
    print(f"\nby hand vs the engine: largest difference {worst:.1e}. "
          f"Try {other}, or --padding {1 - min(ph, 1)}: the same rules, other numbers.")
    return 0 if worst <= 1e-12 else 1


def print_setup(sh, ph, Ho, Wo):
    print("A convolution by hand: im2col, one matrix product, and its backward.\n")
    print("x, one image with one channel (N, C, H, W) = (1, 1, 3, 3), pixels numbered 1..9 so")
    print("that every entry below says which pixel it came from:")
    for row in X[0, 0]:
        print("    " + " ".join(f"{v:3g}" for v in row))
    print("w, one 2x2 kernel (K, C, R, S) = (1, 1, 2, 2):")
    for row in W[0, 0]:
        print("    " + " ".join(f"{v:3g}" for v in row))
    print(f"stride sh = sw = {sh}, padding ph = pw = {ph} (a border of zeros), dilation 1.")
    print(f"Output size: Ho = (H + 2 ph - R) // sh + 1 = (3 + {2 * ph} - 2) // {sh} + 1 = {Ho}, "
          f"Wo = {Wo}.\n")
    print("Output pixel (oy, ox) and kernel tap (r, s) read the input pixel")
    print("    row = oy*sh - ph + r,   column = ox*sw - pw + s      (0 where that is padding)")


def print_columns(col, Ho, Wo):
    print(f"im2col writes those reads as a matrix col, one row per tap (C*R*S = 4 rows) and one")
    print(f"column per output pixel (Ho*Wo = {Ho * Wo} columns):")
    print("    (oy,ox)    " + " ".join(f"{oy},{ox}".rjust(4) for oy in range(Ho)
                                      for ox in range(Wo)))
    for r in range(2):
        for s in range(2):
            print(f"    tap ({r},{s})  " + " ".join(f"{v:4g}" for v in col[r * 2 + s]))


def print_forward(col, y, Ho, Wo):
    w2 = W.reshape(4)
    print("\nForward: the kernel as one row W (1 x 4) times col: y = W @ col, one dot product")
    print(f"per column. W = {fmt(w2)}; the first column gives")
    print("    y[0,0] = " + " + ".join(times(a, b) for a, b in zip(w2, col[:, 0]))
          + f" = {num(y[0, 0])}")
    print(f"    y = {fmt(y.reshape(Ho, Wo))}   (reshaped to Ho x Wo)")


def print_weight_gradient(col, G, Ho, Wo):
    """dW = G @ colᵀ: tap (r, s) collects gradient times the pixel it read, over every output."""
    g = G.reshape(Ho * Wo)
    print("\nBackward. The gradient from above, dL/dy = G (L = sum(G * y)):")
    print(f"    G = {fmt(G)}")
    print("dW = G @ col.T (G as a row): each tap sums dL/dy times the pixel that tap read,")
    print("over every output pixel (padding reads 0 and adds nothing):")
    dW = np.zeros(4)
    for t in range(4):
        terms = [times(a, b) for a, b in zip(g, col[t]) if a != 0 and b != 0]
        dW[t] = g @ col[t]
        print(f"    dW[{t // 2},{t % 2}] = " + (" + ".join(terms) or "0") + f" = {num(dW[t])}")
    return dW.reshape(2, 2)


def print_input_gradient(G, sh, ph, Ho, Wo):
    """dcol = Wᵀ @ G, then col2im: every entry of dcol goes back onto the pixel it was read
    from, and a pixel read by several taps sums them."""
    w2 = W.reshape(4)
    print("dcol = W.T @ G: entry (tap, output pixel) = w[tap] * G[output pixel]. col2im sends")
    print("each entry back to the input pixel that tap read there, and a pixel read several")
    print("times sums them. Below, w01*G21 is kernel tap (r, s) = (0, 1) times dL/dy at output")
    print("pixel (oy, ox) = (2, 1), the output where that tap read this input pixel:")
    dx = np.zeros((3, 3))
    for py in range(3):
        for px in range(3):
            names, terms = [], []
            for r in range(2):
                for s in range(2):
                    oy, ry = divmod(py + ph - r, sh)
                    ox, rx = divmod(px + ph - s, sh)
                    if ry == rx == 0 and 0 <= oy < Ho and 0 <= ox < Wo:
                        names.append(f"w{r}{s}*G{oy}{ox}")
                        terms.append(times(w2[r * 2 + s], G[oy, ox]))
                        dx[py, px] += w2[r * 2 + s] * G[oy, ox]
            sums = f"{' + '.join(names)} = {' + '.join(terms)}" if names else "0 (no tap read it)"
            print(f"    dx[{py},{px}] = {sums} = {num(dx[py, px])}")
    return dx
