"""tg.autocast: which ops see 16-bit operands (the GEMM ops: conv2d, matmul, linear), the CPU
reference's rounding (bfloat16 by round-to-nearest-even on the bit pattern, float16 by NumPy's
cast) and its error bounds, float32 everywhere else, and float64 left alone (gradient checks)."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import optim
from tinygrad_yolo.amp import autocast_dtype, round_to_bfloat16, round_to_float16
from tinygrad_yolo.function import Function
from tinygrad_yolo.nn import functional as F


def _bf16_exact(a):
    return not (np.ascontiguousarray(a, np.float32).view(np.uint32) & 0xFFFF).any()


def _f16_exact(a):
    return np.array_equal(a.astype(np.float16).astype(np.float32), a)


EXACT = {"bfloat16": _bf16_exact, "float16": _f16_exact}


# ---- the rounding ---------------------------------------------------------------------------
def test_bfloat16_rounds_to_nearest_ties_to_even_on_the_bit_pattern():
    one = np.float32(1.0)
    ulp = np.float32(2.0 ** -7)  # bfloat16's spacing at 1
    cases = {one + ulp / 4: one, one + 3 * ulp / 4: one + ulp,
             one + ulp / 2: one,                  # a tie: to the even neighbour, 1.0
             one + 3 * ulp / 2: one + 2 * ulp,    # a tie: to the even neighbour, 1 + 2 ulp
             np.float32(-1.5): np.float32(-1.5), np.float32(2.0 ** 127): np.float32(2.0 ** 127),
             np.float32(3.4e38): np.float32(np.inf),
             np.float32(np.inf): np.float32(np.inf), np.float32(0.0): np.float32(0.0)}
    a = np.array(list(cases), np.float32)
    np.testing.assert_array_equal(round_to_bfloat16(a), np.array(list(cases.values())))
    nan = round_to_bfloat16(np.array([np.nan, -np.nan], np.float32))
    assert np.isnan(nan).all()


def test_bfloat16_rounding_agrees_with_a_brute_force_nearest():
    a = np.random.default_rng(0).standard_normal(20000).astype(np.float32) * 100
    r = round_to_bfloat16(a)
    assert _bf16_exact(r)
    bits = a.view(np.uint32) & np.uint32(0xFFFF0000)
    down = bits.view(np.float32)
    up = (bits + np.uint32(0x10000)).view(np.float32)
    best = np.where(np.abs(a - down) <= np.abs(up - a), down, up)
    ties = np.abs(a - down) == np.abs(up - a)
    np.testing.assert_array_equal(r[~ties], best[~ties])
    assert (np.abs(r - a) <= 2.0 ** -8 * np.abs(a)).all()  # half a bfloat16 ulp, relative


def test_float16_rounding_is_numpys_cast_and_overflows_to_inf():
    a = np.array([1.0 + 2 ** -12, 65504.0, 7e4, 1e-8], np.float32)
    np.testing.assert_array_equal(round_to_float16(a), [1.0, 65504.0, np.inf, 0.0])


# ---- the policy -------------------------------------------------------------------------------
class _Seen:
    """Records each op's name and its input arrays as the op sees them."""

    def __init__(self):
        self.calls = []

    def __enter__(self):
        Function._observers.append(self)
        return self

    def __exit__(self, *exc):
        Function._observers.remove(self)

    def before_forward(self, fn, tensors):
        self.calls.append((getattr(fn, "name", type(fn).__name__), [t.data for t in tensors]))

    def after_forward(self, fn, tensors, out):
        pass


def _small_net(seed=0):
    rng = np.random.default_rng(seed)
    p = {"w": rng.standard_normal((8, 3, 3, 3)) * 0.3, "b": rng.standard_normal(8) * 0.1,
         "gamma": 1 + 0.1 * rng.standard_normal(8), "beta": 0.1 * rng.standard_normal(8),
         "fc": rng.standard_normal((5, 8 * 6 * 6)) * 0.05, "fcb": np.zeros(5)}
    return {k: tg.Tensor(v.astype(np.float32), requires_grad=True) for k, v in p.items()}


def _forward(p, x, target):
    y = F.conv2d(x, p["w"], p["b"], padding=1)
    y = F.batch_norm(y, None, None, p["gamma"], p["beta"], training=True)
    y = F.relu(y)
    y = F.linear(y.reshape(y.shape[0], -1), p["fc"], p["fcb"])
    return F.cross_entropy(y, target) + (y.exp().mean() * 1e-3)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_only_the_gemm_ops_see_16_bit_operands(dtype):
    rng = np.random.default_rng(1)
    x = tg.Tensor(rng.standard_normal((4, 3, 6, 6)).astype(np.float32))
    target = rng.integers(0, 5, 4)
    p = _small_net()
    with _Seen() as seen, tg.autocast(dtype):
        loss = _forward(p, x, target)
    exact = EXACT[dtype]
    gemm_ops = [(name, arrays) for name, arrays in seen.calls if name in ("Conv2d", "MatMul")]
    assert {name for name, _ in gemm_ops} == {"Conv2d", "MatMul"}
    for name, arrays in gemm_ops:  # both operands rounded; the bias is not an operand
        assert all(exact(a) for a in arrays[:2]), name
    others = [(name, arrays) for name, arrays in seen.calls
              if name not in ("Conv2d", "MatMul", "RoundOperand", "RoundGradient")]
    assert any("BatchNorm" in name for name, _ in others)
    for name, arrays in others:  # float32 throughout, and fed float32 sums (not 16-bit values)
        assert all(a.dtype == np.float32 for a in arrays if a.dtype.kind == "f"), name
    bn_input = next(arrays[0] for name, arrays in others if "BatchNorm" in name)
    assert not exact(bn_input)  # the conv's float32 accumulation reaches batch norm unrounded
    assert loss.dtype == np.float32


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_parameters_gradients_and_optimizer_state_stay_float32(dtype):
    rng = np.random.default_rng(2)
    x = tg.Tensor(rng.standard_normal((4, 3, 6, 6)).astype(np.float32))
    p = _small_net()
    opt = optim.SGD(list(p.values()), lr=0.1, momentum=0.9)
    with tg.autocast(dtype):
        loss = _forward(p, x, rng.integers(0, 5, 4))
    loss.backward()
    opt.step()
    for k, t in p.items():
        assert t.dtype == np.float32 and t.grad.dtype == np.float32, k
        assert not EXACT[dtype](t.data), k  # the update is a float32 one
    assert all(s["momentum_buffer"].dtype == np.float32 for s in opt.state.values())


def test_the_backward_gemms_take_the_rounded_gradient():
    # linear: dW = round(G)ᵀ · round(x), dx = round(G) · round(W), summed in float32
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((6, 40)).astype(np.float32), rng.standard_normal((7, 40))
    G = rng.standard_normal((6, 7)).astype(np.float32)
    xt = tg.Tensor(x, requires_grad=True)
    wt = tg.Tensor(w.astype(np.float32), requires_grad=True)
    with tg.autocast("bfloat16"):
        y = F.linear(xt, wt)
    (y * tg.Tensor(G)).sum().backward()
    r = lambda a: round_to_bfloat16(np.asarray(a, np.float32)).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(y.numpy(), r(x) @ r(w).T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(wt.grad.numpy(), r(G).T @ r(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xt.grad.numpy(), r(G) @ r(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype,unit", [("bfloat16", 2.0 ** -7), ("float16", 2.0 ** -10)])
@pytest.mark.parametrize("K", [16, 256, 4096])
def test_the_error_stays_within_the_16_bit_bound_for_depth_k(dtype, unit, K):
    """|y - exact| <= (unit + K·2^-23)·(|a|·|b|): each product carries two operand roundings of
    half an ulp (2^-8 relative for bfloat16's 8 significant bits, 2^-11 for float16's 11: unit =
    2^-7, 2^-10), the float32 sum of K of them at most K·2^-24 more; relative to |y| that is
    about K·2^-8 in the worst case of cancellation. And it is a 16-bit error, not float32's."""
    rng = np.random.default_rng(K)
    a, b = rng.standard_normal((8, K)), rng.standard_normal((K, 9))
    with tg.autocast(dtype):
        y = (tg.Tensor(a.astype(np.float32)) @ tg.Tensor(b.astype(np.float32))).numpy()
    exact = a.astype(np.float32).astype(np.float64) @ b.astype(np.float32).astype(np.float64)
    bound = (unit * (1 + 2.0 ** -8) + K * 2.0 ** -23) * (np.abs(a) @ np.abs(b))
    err = np.abs(y - exact)
    assert (err <= bound).all(), float((err / bound).max())
    assert (err / (np.abs(a) @ np.abs(b))).max() > unit / 64  # the operands were rounded


def test_autocast_leaves_float64_alone_so_gradient_checks_stay_exact():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    fn = lambda a, b: F.conv2d(a, b, padding=1)  # noqa: E731
    with tg.autocast("bfloat16"):
        assert tg.gradcheck(fn, [tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)])
        inside = fn(tg.Tensor(x), tg.Tensor(w)).numpy()
    np.testing.assert_array_equal(inside, fn(tg.Tensor(x), tg.Tensor(w)).numpy())
    assert tg.gradcheck(fn, [tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)])


def test_autocast_nests_restores_and_names_a_bad_dtype():
    assert autocast_dtype() is None
    with tg.autocast("float16"):
        with tg.autocast("bfloat16"):
            assert autocast_dtype() == "bfloat16"
        with tg.autocast("bfloat16", enabled=False):
            assert autocast_dtype() is None
        assert autocast_dtype() == "float16"
    assert autocast_dtype() is None
    with pytest.raises(ValueError, match="autocast dtype must be one of bfloat16, float16"):
        with tg.autocast("float8"):
            pass
