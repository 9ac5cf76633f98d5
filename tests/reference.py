"""Loop definitions of conv2d, im2col / col2im and pooling (float64, straight from the formulas),
shared by the tests: every implementation in tinygrad_yolo/ops and kernels/ is compared with these.

    conv:  y[n, k, oy, ox] = b[k] + Σ_{c, r, s} w[k, c, r, s] · x[n, c, oy·sh − ph + r·dh, ox·sw − pw + s·dw]
    im2col: col[n, c, r, s, oy, ox] = x[n, c, oy·sh − ph + r·dh, ox·sw − pw + s·dw]  (0 in the padding)
    pool:   a window covers input rows oy·sh − ph + r and columns ox·sw − pw + s, r < kh, s < kw
"""
import numpy as np

from tinygrad_yolo.ops.geometry import conv_output_size, pair, window


# ---- convolution --------------------------------------------------------------------------
def _geometry(x, w, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    H, W = x.shape[2:]
    R, S = w.shape[2:]
    Ho = (H + 2 * ph - dh * (R - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (S - 1) - 1) // sw + 1
    return Ho, Wo


def ref_conv(x, w, b, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = _geometry(x, w, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], w.shape[0], Ho, Wo))
    for r in range(w.shape[2]):
        for s in range(w.shape[3]):
            # xp[n, c, oy*sh + r*dh, ox*sw + s*dw] for all oy, ox
            patch = xp[:, :, r * dh:r * dh + sh * (Ho - 1) + 1:sh, s * dw:s * dw + sw * (Wo - 1) + 1:sw]
            y += np.einsum("kc,nchw->nkhw", w[:, :, r, s], patch)
    return y if b is None else y + b[None, :, None, None]


def ref_conv_grads(x, w, g, stride, padding, dilation):
    """(dx, dw, db) of sum(conv(x, w, b) * g)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = g.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(w)
    for r in range(w.shape[2]):
        for s in range(w.shape[3]):
            patch = xp[:, :, r * dh:r * dh + sh * (Ho - 1) + 1:sh, s * dw:s * dw + sw * (Wo - 1) + 1:sw]
            dW[:, :, r, s] = np.einsum("nkhw,nchw->kc", g, patch)
            for oy in range(Ho):
                for ox in range(Wo):
                    dxp[:, :, oy * sh + r * dh, ox * sw + s * dw] += g[:, :, oy, ox] @ w[:, :, r, s]
    dx = dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return dx, dW, g.sum(axis=(0, 2, 3))


# ---- im2col, col2im, max-pool with argmax (the kernels' layouts) ---------------------------
def im2col_loops(x, kh, kw, stride, padding, dilation):
    """col[n, c, i, j, oy, ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw], 0 in the padding."""
    _, _, _, _, sh, sw, ph, pw, dh, dw, Ho, Wo = window("im2col", x.shape, (kh, kw), stride, padding, dilation)
    N, C, H, W = x.shape
    col = np.zeros((N, C, kh, kw, Ho, Wo), dtype=x.dtype)
    for n, c, i, j, oy, ox in np.ndindex(col.shape):
        y, xx = oy * sh - ph + i * dh, ox * sw - pw + j * dw
        if 0 <= y < H and 0 <= xx < W:
            col[n, c, i, j, oy, ox] = x[n, c, y, xx]
    return col


def col2im_loops(col, x_shape, kh, kw, stride, padding, dilation):
    """Scatter-add every col entry onto the pixel im2col read it from."""
    _, _, _, _, sh, sw, ph, pw, dh, dw, _, _ = window("col2im", x_shape, (kh, kw), stride, padding, dilation)
    H, W = x_shape[2:]
    x = np.zeros(x_shape, dtype=col.dtype)
    for n, c, i, j, oy, ox in np.ndindex(col.shape):
        y, xx = oy * sh - ph + i * dh, ox * sw - pw + j * dw
        if 0 <= y < H and 0 <= xx < W:
            x[n, c, y, xx] += col[n, c, i, j, oy, ox]
    return x


def max_pool_loops(x, kernel, stride, padding):
    """(y, argmax): first maximum in row-major window order wins; padding never wins; -inf/-1 if empty."""
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, kh, sh, ph, 1), conv_output_size(W, kw, sw, pw, 1)
    y = np.full((N, C, Ho, Wo), -np.inf, dtype=x.dtype)
    argmax = np.full((N, C, Ho, Wo), -1, dtype=np.int32)
    for n, c, oy, ox in np.ndindex(y.shape):
        for r in range(kh):
            for s in range(kw):
                h, w = oy * sh - ph + r, ox * sw - pw + s
                if 0 <= h < H and 0 <= w < W and (argmax[n, c, oy, ox] < 0 or x[n, c, h, w] > y[n, c, oy, ox]):
                    y[n, c, oy, ox], argmax[n, c, oy, ox] = x[n, c, h, w], h * W + w
    return y, argmax


def max_pool_backward_loops(gy, argmax, x_shape):
    gx = np.zeros(x_shape, dtype=gy.dtype)
    W = x_shape[3]
    for n, c, oy, ox in np.ndindex(gy.shape):
        a = argmax[n, c, oy, ox]
        if a >= 0:
            gx[n, c, a // W, a % W] += gy[n, c, oy, ox]
    return gx


# ---- pooling --------------------------------------------------------------------------------
def windows(shape, kernel, stride, padding):
    """Yield (oy, ox, [(h, w) of the window's in-image pixels in row-major window order], count)."""
    (kh, kw), (ph, pw) = kernel, padding
    sh, sw = kernel if stride is None else stride
    H, W = shape[2:]
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    for oy in range(Ho):
        for ox in range(Wo):
            pixels = [(oy * sh - ph + r, ox * sw - pw + s) for r in range(kh) for s in range(kw)]
            yield oy, ox, [(h, w) for h, w in pixels if 0 <= h < H and 0 <= w < W]


def ref_max_pool(x, kernel, stride, padding, g):
    """(y, dx): the max over the window's real pixels; the gradient to the first maximum."""
    y, argmax = max_pool_loops(x, kernel, kernel if stride is None else stride, padding)
    return y, max_pool_backward_loops(g, argmax, x.shape)


def ref_avg_pool(x, kernel, stride, padding, g):
    wins = list(windows(x.shape, kernel, stride, padding))
    Ho, Wo = wins[-1][0] + 1, wins[-1][1] + 1
    area = kernel[0] * kernel[1]  # count_include_pad: padding counts in the divisor
    y, dx = np.zeros(x.shape[:2] + (Ho, Wo)), np.zeros_like(x)
    for oy, ox, pixels in wins:
        for h, w in pixels:
            y[:, :, oy, ox] += x[:, :, h, w] / area
            dx[:, :, h, w] += g[:, :, oy, ox] / area
    return y, dx


def ref_adaptive(x, out, g):
    """PyTorch's bins: [floor(i*H/out), ceil((i+1)*H/out))."""
    (Ho, Wo), (H, W) = out, x.shape[2:]
    y, dx = np.zeros(x.shape[:2] + out), np.zeros_like(x)
    for i in range(Ho):
        h0, h1 = (i * H) // Ho, -(-((i + 1) * H) // Ho)
        for j in range(Wo):
            w0, w1 = (j * W) // Wo, -(-((j + 1) * W) // Wo)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
            dx[:, :, h0:h1, w0:w1] += g[:, :, i:i + 1, j:j + 1] / ((h1 - h0) * (w1 - w0))
    return y, dx
