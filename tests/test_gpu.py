"""Every op on device="cuda" against the NumPy path, and gradchecks on the GPU (float64).

Each test is parametrized over the device: "cuda" runs only with CuPy and a GPU (skipped
with the reason otherwise), "cpu" runs the very same code everywhere as a dry run of the
harness. In the dry run conv2d runs its reference (ops/conv.py, the definition that CUDA's
kernels and GEMMs compute too) and is compared with the NumPy path the rule picks.

The kernels themselves (im2col, col2im, max pool) are compared with the NumPy reference in
tests/test_kernels.py; here they are reached through the ops.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo import backend
from tinygrad_yolo.checks import CASES, build_example, check_example, repro_line
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.ops import conv as conv_ops


def _why_no_gpu():
    try:
        backend.cupy_module()
    except RuntimeError as e:  # says what is missing: CuPy itself, or a driver / GPU
        return str(e)
    return ""


requires_gpu = pytest.mark.skipif(not tg.cuda_available(),
                                  reason=f"CUDA test skipped: {_why_no_gpu()}")
DEVICES = ["cpu", pytest.param("cuda", marks=requires_gpu)]
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}


def run_on(device, fn, arrays, dtype, upstream_seed=0):
    """fn(*tensors) on ``device``: host copies of the output and of every input's gradient."""
    tensors = [tg.Tensor(backend.to_device(np.asarray(a, dtype=dtype), device), requires_grad=True)
               for a in arrays]
    y = fn(*tensors)
    g = np.random.default_rng(upstream_seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(tg.Tensor(backend.to_device(g, device)))
    assert y.device == device and all(t.grad is None or t.grad.device == device for t in tensors)
    return [y.numpy()] + [None if t.grad is None else t.grad.numpy() for t in tensors]


def assert_same(got, want, dtype, what=""):
    tol = TOLERANCE[dtype]
    for i, (a, b) in enumerate(zip(got, want)):
        if b is None:
            assert a is None, f"{what}: output {i} has a gradient on one device only"
            continue
        assert a.dtype == b.dtype, f"{what}: output {i} dtype {a.dtype} vs {b.dtype}"
        scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
        np.testing.assert_allclose(
            a, b, rtol=tol["rtol"], atol=tol["atol"] * scale,
            err_msg=f"{what}: output {i} (0 = forward, then input gradients)")


# ---- conv, pools, batch norm: device vs the NumPy path -----------------------------------------
CONV_CONFIGS = [  # (x shape, w shape, stride, padding, dilation, bias)
    ((2, 3, 9, 9), (4, 3, 3, 3), 1, 1, 1, True),
    ((2, 3, 9, 8), (4, 3, 3, 3), 2, 1, 1, False),
    ((1, 4, 11, 10), (2, 4, 3, 2), (1, 2), (2, 0), (2, 1), True),
    ((3, 2, 7, 7), (5, 2, 1, 1), 1, 0, 1, True),     # 1x1 pointwise path
    ((2, 4, 8, 8), (6, 4, 1, 1), 2, 0, 1, False),    # 1x1 stride-2 projection
    ((1, 3, 16, 16), (4, 3, 7, 7), 2, 3, 1, False),  # ResNet stem
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", CONV_CONFIGS,
                         ids=lambda c: f"x{c[0]}w{c[1]}s{c[2]}p{c[3]}d{c[4]}")
@pytest.mark.parametrize("device", DEVICES)
def test_conv2d_matches_numpy(device, config, dtype):
    x_shape, w_shape, stride, padding, dilation, bias = config
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    # on CUDA the path dispatch picks there; in the dry run the reference it computes
    op = (lambda *t: F.conv2d(*t, **kw)) if device == "cuda" else (
        lambda *t: conv_ops.Conv2d.apply(*t, **kw))
    got = run_on(device, op, arrays, dtype)
    want = run_on("cpu", lambda *t: F.conv2d(*t, **kw), arrays, dtype)
    assert_same(got, want, dtype, "conv2d")


POOLS = {
    "max 2x2": lambda x: F.max_pool2d(x, 2),
    "max 3x3/2 pad 1": lambda x: F.max_pool2d(x, 3, 2, 1),
    "max 3x2/(1,2)": lambda x: F.max_pool2d(x, (3, 2), (1, 2)),
    "avg 2x2": lambda x: F.avg_pool2d(x, 2),
    "avg 3x3/2 pad 1": lambda x: F.avg_pool2d(x, 3, 2, 1),
    "adaptive 1": lambda x: F.adaptive_avg_pool2d(x, 1),
    "adaptive (3, 2)": lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", sorted(POOLS))
@pytest.mark.parametrize("device", DEVICES)
def test_pools_match_numpy(device, pool, dtype):
    # distinct values: the max (and so the gradient's destination) is the same on both devices
    x = np.random.default_rng(1).permutation(2 * 3 * 9 * 7).reshape(2, 3, 9, 7) * 0.01
    assert_same(run_on(device, POOLS[pool], [x], dtype), run_on("cpu", POOLS[pool], [x], dtype),
                dtype, pool)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 3)])
@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_matches_numpy(device, shape, training, dtype):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(shape) * 2 + 1, rng.standard_normal(3), rng.standard_normal(3)]
    stats0 = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    results, stats = [], []
    for dev in (device, "cpu"):
        # copies: updated in place
        rm, rv = (backend.to_device(s.astype(dtype), dev) for s in stats0)
        results.append(run_on(dev, lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=training),
                              arrays, dtype))
        stats.append([backend.to_numpy(rm), backend.to_numpy(rv)])
    assert_same(results[0], results[1], dtype, "batch_norm")
    assert_same(stats[0], stats[1], dtype, "running statistics")


# ---- every registered op: forward and gradients vs NumPy, and gradchecks on the device -----------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data())
def test_registered_op_matches_numpy(device, name, dtype, data):
    fn, arrays, params = build_example(name, data.draw)
    got, want = run_on(device, fn, arrays, dtype), run_on("cpu", fn, arrays, dtype)
    assert_same(got, want, dtype, f"{name} {params}")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data())
def test_gradcheck_on_device(device, name, data):
    fn, arrays, params = build_example(name, data.draw)
    result = check_example(name, fn, arrays, device=device)
    assert result.ok, f"{result.message()}\nreplay: {repro_line(name, params, device)}"


# ---- the residual split and moving gradients between devices --------------------------------
def _branch(x, w1, g1, b1, w2, g2, b2):
    h = F.relu(F.batch_norm(F.conv2d(x, w1, padding=1), None, None, g1, b1, training=True))
    return F.batch_norm(F.conv2d(h, w2, padding=1), None, None, g2, b2, training=True)


@pytest.mark.parametrize("device", DEVICES)
def test_residual_split_on_device(device):
    rng = np.random.default_rng(3)
    c = 3
    x = rng.standard_normal((2, c, 6, 5))
    weights = [rng.standard_normal((c, c, 3, 3)) / 3, rng.uniform(0.5, 1.5, c),
               rng.standard_normal(c), rng.standard_normal((c, c, 3, 3)) / 3,
               rng.uniform(0.5, 1.5, c), rng.standard_normal(c)]
    upstream = backend.to_device(rng.standard_normal(x.shape), device)

    def grads(with_skip):
        ts = [tg.Tensor(backend.to_device(a, device), requires_grad=True) for a in [x] + weights]
        y = _branch(*ts)
        (y + ts[0] if with_skip else y).backward(tg.Tensor(upstream))
        return [t.grad.numpy() for t in ts]

    with_skip, branch_only = grads(True), grads(False)
    np.testing.assert_allclose(with_skip[0], branch_only[0] + backend.to_numpy(upstream), rtol=0,
                               atol=1e-10)
    for a, b in zip(with_skip[1:], branch_only[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    # and the whole block gradchecks on the device
    ts = [tg.Tensor(backend.to_device(a, device), requires_grad=True) for a in [x] + weights]
    assert tg.gradcheck(lambda x, *ws: _branch(x, *ws) + x, ts)


@pytest.mark.parametrize("device", DEVICES)
def test_to_moves_gradients_back(device):
    rng = np.random.default_rng(4)
    x = tg.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)  # leaves on the host
    w = tg.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x.to(device), w.to(device), padding=1)
    assert y.device == device
    y.sum().to("cpu").backward()
    assert x.grad.device == "cpu" and w.grad.device == "cpu"
    xr, wr = tg.Tensor(x.numpy(), requires_grad=True), tg.Tensor(w.numpy(), requires_grad=True)
    F.conv2d(xr, wr, padding=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), wr.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cuda_request_without_a_gpu_is_a_clear_error():
    if tg.cuda_available():
        pytest.skip("a GPU is present: nothing to check about its absence")
    with pytest.raises(RuntimeError, match="needs CuPy and an NVIDIA GPU"):
        tg.Tensor(np.zeros(3), device="cuda")
