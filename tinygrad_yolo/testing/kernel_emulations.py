"""NumPy emulations of the kernels in kernels/*.cu, for fake_cupy's RawModule (same arguments as
the launches in kernels/__init__.py and kernels/fused.py; outputs written in place). They are built
on the NumPy reference paths the host-shim tests compare the .cu sources against, so a step run
through fake_cupy computes what the CPU computes."""
import numpy as np

from ..ops.im2col import col2im, im2col

RAW_KERNELS = {}  # kernel name (no template arguments) -> emulation(*args) on NumPy arrays


def raw_kernel(name):
    """Register a NumPy emulation for the RawModule kernel ``name``; it gets the launch's arguments
    (device arrays as NumPy arrays, scalars as given; fused.NULL, a zero, for a null pointer) and
    writes the outputs in place. An emulation with ``with_launch = True`` gets (grid, block)
    first."""
    def register(fn):
        RAW_KERNELS[name] = fn
        return fn
    return register


@raw_kernel("im2col_kernel")
def _im2col(x, col, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, C, image_stride,
            tap_stride):
    NC, C, kh, kw, P = int(NC), int(C), int(kh), int(kw), int(Ho) * int(Wo)
    N = NC // C
    x4 = x.reshape(N, C, int(H), int(W))
    cols = im2col(x4, kh, kw, (int(sh), int(sw)), (int(ph), int(pw)), (int(dh), int(dw)))
    if int(tap_stride) == P:  # (N, C, kh, kw, Ho, Wo)
        col.reshape(cols.shape)[...] = cols
    else:  # (C, kh, kw, N, Ho, Wo)
        col.reshape(C, kh, kw, N, P)[...] = cols.reshape(N, C, kh, kw, P).transpose(1, 2, 3, 0, 4)


@raw_kernel("col2im_kernel")
def _col2im(col, x, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw):
    c6 = col.reshape(1, int(NC), int(kh), int(kw), int(Ho), int(Wo))
    x.reshape(1, int(NC), int(H), int(W))[...] = col2im(
        c6, (1, int(NC), int(H), int(W)), int(kh), int(kw), (int(sh), int(sw)), (int(ph), int(pw)),
        (int(dh), int(dw)))


def _pool_taps(x, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    xp = np.full((NC, H + 2 * ph, W + 2 * pw), -np.inf, dtype=x.dtype)
    xp[:, ph:ph + H, pw:pw + W] = x.reshape(NC, H, W)
    for r in range(kh):
        for s in range(kw):
            rows = np.arange(Ho) * sh + r - ph
            cols = np.arange(Wo) * sw + s - pw
            taps = xp[:, r:r + sh * (Ho - 1) + 1:sh, s:s + sw * (Wo - 1) + 1:sw]
            yield taps, rows[:, None] * W + cols[None, :]


@raw_kernel("max_pool2d_forward_kernel")
def _max_pool_forward(x, y, argmax, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw = (
        int(v) for v in (NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw))
    best = np.full((NC, Ho, Wo), -np.inf, dtype=x.dtype)
    where = np.zeros((NC, Ho, Wo), dtype=np.int32)
    for tap, index in _pool_taps(x, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
        wins = tap > best  # strictly greater: the first of ties in scan order
        best = np.where(wins, tap, best)
        where = np.where(wins, index, where).astype(np.int32)
    y.reshape(NC, Ho, Wo)[...] = best
    argmax.reshape(NC, Ho, Wo)[...] = where


@raw_kernel("max_pool2d_backward_kernel")
def _max_pool_backward(gy, argmax, gx, NC, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw):
    NC, H, W = int(NC), int(H), int(W)
    out = np.zeros((NC, H * W), dtype=gy.dtype)
    rows = np.repeat(np.arange(NC), argmax.size // max(NC, 1))
    np.add.at(out, (rows, argmax.reshape(-1)), gy.reshape(-1))
    gx.reshape(NC, H * W)[...] = out


# ---- kernels/batchnorm.cu and kernels/optim.cu (loaded by kernels/fused.py) ---------------------
def _given(a):
    """An array argument, or None for a null pointer."""
    return a if isinstance(a, np.ndarray) else None


def _by_channel(x, N, C, L):
    """(C, m) float64: each channel's m = N*L values in the kernels' order i = n*L + l."""
    return x.reshape(N, C, L).transpose(1, 0, 2).reshape(C, N * L).astype(np.float64)


def _shares(v, P):
    """(C, rows, P) zero-padded, and (rows, P) where the real values lie: share p holds the values
    i % P == p. A mask, not NaN padding, so that a NaN in the data stays a NaN."""
    C, m = v.shape
    pad = (-m) % P
    s = np.concatenate([v, np.zeros((C, pad))], axis=1).reshape(C, -1, P)
    return s, np.concatenate([np.ones(m, bool), np.zeros(pad, bool)]).reshape(-1, P)


@raw_kernel("bn_partial_stats_kernel")
def _bn_partial_stats(x, part_mean, part_m2, N, C, L, P):
    N, C, L, P = int(N), int(C), int(L), int(P)
    s, valid = _shares(_by_channel(x, N, C, L), P)
    mean = s.sum(axis=1) / np.maximum(valid.sum(axis=0), 1)
    part_mean[...] = mean.reshape(part_mean.shape)
    m2 = np.where(valid, (s - mean[:, None, :]) ** 2, 0).sum(axis=1)
    part_m2[...] = m2.reshape(part_m2.shape)


def _share_counts(m, P):
    p = np.arange(P)
    return np.where(p < m % P, m // P + 1, m // P).astype(np.float64)


@raw_kernel("bn_finalize_kernel")
def _bn_finalize(part_mean, part_m2, weight, running_mean, running_var, mean_out, invstd_out,
                 scale, m, C, P, eps, momentum):
    m, P = int(m), int(P)
    n_b = _share_counts(m, P)
    pm, pm2 = part_mean.astype(np.float64), part_m2.astype(np.float64)
    mean = (pm * n_b).sum(axis=1) / m
    var = (pm2.sum(axis=1) + (n_b * (pm - mean[:, None]) ** 2).sum(axis=1)) / m
    invstd = 1 / np.sqrt(var + float(eps))
    mean_out[...], invstd_out[...], scale[...] = mean, invstd, weight * invstd
    rm, rv, mom = _given(running_mean), _given(running_var), float(momentum)
    T = weight.dtype.type  # in x's dtype, rounded step by step as ops/norm.py's update
    if rm is not None:
        rm[...] = rm * T(1 - mom) + T(mom) * mean.astype(T)
    if rv is not None:
        rv[...] = rv * T(1 - mom) + T(mom * m / (m - 1)) * var.astype(T)


def _rows(v, C, L):
    return v.reshape(1, C, 1)


@raw_kernel("bn_apply_kernel")
def _bn_apply(x, mean, scale, bias, residual, y, total, C, L, relu):
    C, L = int(C), int(L)
    x3 = x.reshape(-1, C, L)
    v = (x3 - _rows(mean, C, L)) * _rows(scale, C, L) + _rows(bias, C, L)
    if _given(residual) is not None:
        v = v + residual.reshape(x3.shape)
    y.reshape(x3.shape)[...] = np.maximum(v, 0) if int(relu) else v  # NaN passes, as on the CPU


def _masked(g, y, relu):
    return g * (y > 0) if int(relu) else g  # ops/activation.ReLU's backward


@raw_kernel("bn_partial_grad_kernel")
def _bn_partial_grad(g, x, y, mean, invstd, part_g, part_gx, N, C, L, P, relu):
    N, C, L, P = int(N), int(C), int(L), int(P)
    gv = _masked(g, y, relu) if int(relu) else g
    xhat = (x.reshape(N, C, L) - mean.reshape(1, C, 1)) * invstd.reshape(1, C, 1)
    sg = _shares(_by_channel(gv, N, C, L), P)[0]  # zero padding adds nothing
    sgx = _shares(_by_channel(gv.reshape(N, C, L) * xhat, N, C, L), P)[0]
    part_g[...] = sg.sum(axis=1).reshape(part_g.shape)
    part_gx[...] = sgx.sum(axis=1).reshape(part_gx.shape)


@raw_kernel("bn_grad_finalize_kernel")
def _bn_grad_finalize(part_g, part_gx, weight, invstd, dgamma, dbeta, coef_g, coef_x, coef_c, m, C,
                      P, training):
    sg, sgx = part_g.astype(np.float64).sum(axis=1), part_gx.astype(np.float64).sum(axis=1)
    s = weight.astype(np.float64) * invstd
    dbeta[...], dgamma[...], coef_g[...] = sg, sgx, s
    coef_x[...] = s * sgx / int(m) if int(training) else 0
    coef_c[...] = s * sg / int(m) if int(training) else 0


@raw_kernel("bn_dx_kernel")
def _bn_dx(g, x, y, mean, invstd, coef_g, coef_x, coef_c, dx, g_residual, total, C, L, relu):
    C, L = int(C), int(L)
    shape = (-1, C, L)
    gv = (_masked(g, y, relu) if int(relu) else g).reshape(shape)
    if _given(g_residual) is not None:
        g_residual.reshape(shape)[...] = gv
    if _given(dx) is not None:
        r = lambda v: v.reshape(1, C, 1)  # noqa: E731
        x_hat = (x.reshape(shape) - r(mean)) * r(invstd)
        xc = np.where(r(coef_x) == 0, 0, x_hat * r(coef_x))  # eval mode: x not read, as the .cu
        dx.reshape(shape)[...] = gv * r(coef_g) - xc - r(coef_c)


@raw_kernel("sgd_step_kernel")
def _sgd_step(p, grad, buf, n, lr, momentum, dampening, weight_decay, nesterov, first):
    d = grad
    if weight_decay != 0:
        d = p * weight_decay + d
    if momentum != 0:
        if int(first):
            b = d.copy()
        elif dampening != 0:
            b = buf * momentum + (1 - dampening) * d
        else:
            b = buf * momentum + d
        buf[...] = b
        d = d + momentum * b if int(nesterov) else b
    p[...] = p - d * lr


@raw_kernel("adam_step_kernel")
def _adam_step(p, grad, exp_avg, exp_avg_sq, n, beta1, omb1, beta2, omb2, eps, weight_decay, decay,
               step_size, bias2_sqrt, decoupled):
    g, w = grad, p.copy()
    if weight_decay != 0:
        if int(decoupled):
            w = w * decay
        else:
            g = g + weight_decay * w
    m = exp_avg * beta1 + omb1 * g
    v = exp_avg_sq * beta2 + omb2 * (g * g)
    exp_avg[...], exp_avg_sq[...] = m, v
    p[...] = w - step_size * (m / (np.sqrt(v) / bias2_sqrt + eps))
