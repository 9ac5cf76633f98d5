"""conv2d against the definition, on every CPU path of dispatch.CONV2D (the im2col reference, tiled,
images, images-wide, pointwise) and on the path the rule picks.

    y[n, k, oy, ox] = b[k] + Σ_{c, r, s} w[k, c, r, s] · x[n, c, oy·sh − ph + r·dh,
                                                             ox·sw − pw + s·dw]

The references (tests/reference.py) are written straight from that formula (float64): the
forward and dW as one einsum per kernel tap, dx by a loop over output pixels that adds each
pixel's contribution back onto the input pixels it read.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo as tg
from tinygrad_yolo import dispatch
from tinygrad_yolo.nn import functional as F
from tinygrad_yolo.ops import conv as conv_ops
from tinygrad_yolo.ops.fast import choices, conv_images, conv_tiled, workspace
from tinygrad_yolo.ops.fast import phases as phases_ops
from tinygrad_yolo.ops.geometry import conv_window

from reference import ref_conv, ref_conv_grads


@st.composite
def conv_problems(draw, max_side=9):
    """(x, w, b, stride, padding, dilation) with only valid combinations."""
    n, c, k = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H = draw(st.integers(max(1, dilation[0] * (R - 1) + 1 - 2 * padding[0]), max_side))
    W = draw(st.integers(max(1, dilation[1] * (S - 1) + 1 - 2 * padding[1]), max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    b = rng.standard_normal(k) if draw(st.booleans()) else None
    x, w = rng.standard_normal((n, c, H, W)), rng.standard_normal((k, c, R, S))
    return x, w, b, stride, padding, dilation


# dispatch.CONV2D entries by name; None = the rule's choice (dispatch.conv2d_path). "images" is
# tested twice: "images" as the small test maps have it (the plain per-image im2col: too narrow
# for the wide variant) and "images-wide", the padded-width im2col of stride-1 convolutions on
# every map (WideColumns).
PATHS = [None, "tiled", "images", "images-wide", "reference"]


def conv_op(path, x, w, stride=1, padding=0, dilation=1):
    """The Conv2d class of CONV2D entry ``path``, or of the rule's choice for the arrays (None)."""
    if path is None:
        path = dispatch.conv2d_path(x, w, stride, padding, dilation)
    return dispatch.resolve(dispatch.CONV2D, path)


def run_conv(x, w, b, stride, padding, dilation, path=None, g=None):
    """Forward (and backward with upstream g) through the path's Function; returns y, dx, dw, db."""
    xt, wt = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    inputs = [xt, wt] + ([tg.Tensor(b, requires_grad=True)] if b is not None else [])
    op = conv_op(path, x, w, stride, padding, dilation)
    y = op.apply(*inputs, stride=stride, padding=padding, dilation=dilation)
    if g is None:
        return y.numpy()
    y.backward(tg.Tensor(g))
    db = inputs[2].grad.numpy() if b is not None else None
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy(), db


@pytest.fixture(params=["one tile", "one row per tile"])
def tiling(request, monkeypatch):
    """The small test shapes fit one tile; also run them with a tile per output row."""
    if request.param == "one row per tile":
        monkeypatch.setattr(conv_tiled, "TILE_BYTES", 1)
        monkeypatch.setattr(conv_tiled, "MIN_TILE_COLUMNS", 1)
    return request.param


# ---- forward and backward against the definition ---------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@given(problem=conv_problems())
def test_forward_and_gradients_match_the_definition(path, problem):
    x, w, b, stride, padding, dilation = problem
    y_ref = ref_conv(x, w, b, stride, padding, dilation)
    g = np.random.default_rng(1).standard_normal(y_ref.shape)
    y, dx, dw, db = run_conv(x, w, b, stride, padding, dilation, path, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    dx_ref, dw_ref, db_ref = ref_conv_grads(x, w, g, stride, padding, dilation)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(db, db_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stride,padding,dilation,x_shape,w_shape", [
    ((1, 1), (1, 1), (1, 1), (3, 4, 11, 10), (5, 4, 3, 3)),  # dx through the "flipped kernel" conv
    ((2, 2), (1, 1), (1, 1), (3, 4, 11, 10), (5, 4, 3, 3)),  # dx through col2im
    ((1, 2), (2, 0), (2, 1), (3, 4, 11, 10), (5, 4, 3, 3)),  # mixed per axis
    ((1, 1), (3, 3), (1, 1), (3, 4, 11, 10), (5, 4, 3, 3)),  # padding wider than the kernel: col2im
    ((1, 1), (1, 1), (1, 1), (1, 9, 3, 2), (8, 9, 3, 3)),    # weights larger than gy: col2im
])
@pytest.mark.parametrize("dw_transposed", [False, True])
def test_tiled_path_with_many_tiles(tiling, stride, padding, dilation, x_shape, w_shape,
                                    dw_transposed, monkeypatch):
    # both GEMM orientations for dW (chosen by the number of columns in real use)
    monkeypatch.setattr(choices, "DW_TRANSPOSED_MIN_COLUMNS", 0 if dw_transposed else 10 ** 12)
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y_ref = ref_conv(x, w, b, stride, padding, dilation)
    g = rng.standard_normal(y_ref.shape)
    y, dx, dw, db = run_conv(x, w, b, stride, padding, dilation, None, g)
    dx_ref, dw_ref, db_ref = ref_conv_grads(x, w, g, stride, padding, dilation)
    for got, want in ((y, y_ref), (dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)


def test_row_tiles_cover_every_row_evenly(monkeypatch):
    monkeypatch.setattr(conv_tiled, "TILE_BYTES", 4 * 10 * 7 * 4 + 1)  # 4 rows of 7 columns, q = 10
    monkeypatch.setattr(conv_tiled, "MIN_TILE_COLUMNS", 1)
    tiles = conv_tiled.row_tiles(28, 7, 10, 4)
    assert tiles == [(a, a + 4) for a in range(0, 28, 4)]
    monkeypatch.setattr(conv_tiled, "TILE_BYTES", 7 * 10 * 7 * 4)  # 7 rows fit
    assert conv_tiled.row_tiles(10, 7, 10, 4) == [(0, 5), (5, 10)]  # two even tiles, not 7 + 3
    # but never fewer than 30 columns: 5 rows
    monkeypatch.setattr(conv_tiled, "MIN_TILE_COLUMNS", 30)
    assert conv_tiled.row_tiles(10, 7, 10, 4) == [(0, 5), (5, 10)]
    assert conv_tiled.row_tiles(3, 7, 10 ** 9, 4) == [(0, 3)]


@given(problem=conv_problems(max_side=6))
def test_pointwise_fast_path(problem):
    x, w, _, stride, _, _ = problem  # any stride: the projection shortcuts use 1x1 stride 2
    w = w[:, :, :1, :1].copy()  # 1x1
    b = np.arange(w.shape[0], dtype=np.float64)
    y_ref = ref_conv(x, w, b, stride, (0, 0), (1, 1))
    g = np.random.default_rng(2).standard_normal(y_ref.shape)
    y, dx, dw, db = run_conv(x, w, b, stride, (0, 0), (1, 1), None, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    dx_ref, dw_ref, db_ref = ref_conv_grads(x, w, g, stride, (0, 0), (1, 1))
    for got, want in ((dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_dx_as_a_convolution_is_decided_in_one_place():
    g = conv_window((2, 3, 8, 8), (4, 3, 3, 3), None, (1, 1), (1, 1), (1, 1))
    assert choices.dx_as_convolution("reference", g, 108, 512) is None  # the definition: col2im
    for path in ("cuda", "images", "tiled"):
        assert choices.dx_as_convolution(path, g, 108, 512).padding == (1, 1)
    # weights much larger than gy
    assert choices.dx_as_convolution("tiled", g, 10 ** 6, 512) is None
    strided = conv_window((2, 3, 8, 8), (4, 3, 3, 3), None, (2, 2), (1, 1), (1, 1))
    assert choices.dx_as_convolution("cuda", strided, 108, 128) is None


# maps that "tiled" and "images" would take
@pytest.mark.parametrize("x_shape", [(2, 3, 5, 4), (2, 3, 60, 60)])
@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_path_skips_im2col(stride, x_shape, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a 1x1 convolution without padding must not build an im2col matrix")
    for module, name in ((conv_ops, "im2col_window"), (conv_ops, "col2im_window"),
                         (conv_tiled, "im2col_rows"), (conv_tiled, "col2im_rows"),
                         (conv_images, "im2col_rows"), (conv_images, "col2im_rows")):
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(conv_images.WideColumns, "of", forbidden)
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((6, 3, 1, 1)), requires_grad=True)
    assert dispatch.conv2d_path(x.data, w.data, stride, 0, 1) == "pointwise"
    y = F.conv2d(x, w, stride=stride)
    y.sum().backward()
    want = np.einsum("kc,nchw->nkhw", w.numpy()[:, :, 0, 0], x.numpy()[:, :, ::stride, ::stride])
    np.testing.assert_allclose(y.numpy(), want)


@pytest.mark.parametrize("padding,dilation,kernel", [
    ((1, 1), (1, 1), (3, 3)), ((0, 2), (1, 2), (3, 3)), ((3, 3), (1, 1), (7, 7)),
    ((1, 0), (2, 1), (2, 3)),
    ((1, 3), (1, 1), (3, 3)),  # padding past the kernel's reach
])
def test_default_choice_on_a_large_map_takes_the_wide_columns(padding, dilation, kernel,
                                                              monkeypatch):
    """A 28x52 map picks "images", which at stride 1 builds im2col at a row pitch a little wider
    than the output (WideColumns): y, dx and dW against the definition, with odd paddings,
    dilations and kernels, and a padding wider than the kernel reaches (then the pitch is the
    output's width)."""
    built = []
    real = conv_images.WideColumns.of
    monkeypatch.setattr(conv_images.WideColumns, "of",
                        lambda self, image: built.append(1) or real(self, image))
    rng = np.random.default_rng(9)
    stride = (1, 1)
    x, w = rng.standard_normal((2, 3, 28, 52)), rng.standard_normal((4, 3) + kernel)
    b = rng.standard_normal(4)
    y_ref = ref_conv(x, w, b, stride, padding, dilation)
    g = rng.standard_normal(y_ref.shape)
    y, dx, dw, db = run_conv(x, w, b, stride, padding, dilation, None, g)
    assert built, "the wide im2col was not used"
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    for got, want in zip((dx, dw, db), ref_conv_grads(x, w, g, stride, padding, dilation)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)


def test_wide_columns_never_multiply_garbage_into_dw(monkeypatch):
    """Junk columns read the padding and, past the image, the buffer's slack; dW multiplies
    them by zero, so they must be finite: with every scratch buffer first filled with NaN,
    y, dx and dW must still be exact."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 9, 11))
    for kernel, dilation in [(2, (1, 1)), (3, (2, 2)), (3, (2, 1))]:
        w = rng.standard_normal((4, 3, kernel, kernel))
        y_ref = ref_conv(x, w, None, (1, 1), (0, 1), dilation)
        # the buffers exist
        run_conv(x, w, None, 1, (0, 1), dilation, "images-wide", np.ones(y_ref.shape))
        for buf in workspace._buffers().values():
            buf.view(np.uint8).fill(0xFF)  # NaN in every float
        g = rng.standard_normal(y_ref.shape)
        y, dx, dw, _ = run_conv(x, w, None, 1, (0, 1), dilation, "images-wide", g)
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
        for got, want in zip((dx, dw), ref_conv_grads(x, w, g, (1, 1), (0, 1), dilation)[:2]):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-11)


def test_functional_conv2d_with_int_and_pair_arguments():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    y = F.conv2d(tg.Tensor(x), tg.Tensor(w), tg.Tensor(b), stride=2, padding=(1, 0),
                 dilation=(1, 2))
    np.testing.assert_allclose(y.numpy(), ref_conv(x, w, b, (2, 2), (1, 0), (1, 2)), rtol=1e-10,
                               atol=1e-12)
    assert F.conv2d(tg.Tensor(x), tg.Tensor(w)).shape == (2, 4, 6, 6)


# ---- the table and the rule ---------------------------------------------------------------------
def test_every_path_is_a_conv2d_under_the_reference_name():
    for name in dispatch.CONV2D:
        op = dispatch.resolve(dispatch.CONV2D, name)
        assert issubclass(op, conv_ops.Conv2d) and op.name == "Conv2d", name
    with pytest.raises(ValueError, match="no implementation named 'im2col'"):
        dispatch.resolve(dispatch.CONV2D, "im2col")


@pytest.mark.parametrize("x_shape,w_shape,kwargs,path", [
    ((2, 3, 14, 14), (4, 3, 3, 3), dict(padding=1), "tiled"),             # 14x14 output
    ((2, 3, 28, 28), (4, 3, 3, 3), dict(padding=1), "images"),            # 28x28 output
    ((2, 3, 56, 56), (4, 3, 3, 3), dict(padding=1, stride=2), "images"),  # 28x28 output
    ((2, 3, 56, 56), (4, 3, 3, 3), dict(padding=0, stride=2), "tiled"),   # 27x27 output
    ((2, 3, 56, 56), (4, 3, 1, 1), dict(stride=2), "pointwise"),
    ((2, 3, 5, 5), (4, 3, 1, 1), dict(padding=1), "tiled"),              # 1x1 with padding
    ((0, 3, 56, 56), (4, 3, 3, 3), dict(padding=1), "reference"),         # empty batch
    ((2, 3, 56, 56), (0, 3, 3, 3), dict(padding=1), "reference"),         # no filters
    ((2, 3, 5, 5), (4, 2, 3, 3), {}, "reference"),                       # the op refuses it
    ((2, 3, 5, 5), (4, 3, 3, 3), dict(stride=0), "reference"),
])
def test_the_rule_picks_by_map_size_and_kernel(x_shape, w_shape, kwargs, path):
    args = [kwargs.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))]
    assert dispatch.conv2d_path(np.zeros(x_shape), np.zeros(w_shape), *args) == path


def test_errors_name_conv2d_whichever_path_the_shapes_suggest():
    x, w = tg.Tensor(np.zeros((2, 3, 60, 60))), tg.Tensor(np.zeros((4, 2, 3, 3)))  # "images"-sized
    with pytest.raises(ValueError, match=r"^Conv2d on input shapes .* input has 3 channels"):
        F.conv2d(x, w)


# ---- gradients only where needed, buffers never leaked -----------------------------------------
def test_no_input_gradient_for_an_image_batch():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((4, 3, 3, 3))
    xt, wt = tg.Tensor(x), tg.Tensor(w, requires_grad=True)  # images: no gradient
    y = F.conv2d(xt, wt, stride=2, padding=1)
    g = rng.standard_normal(y.shape)
    y.backward(tg.Tensor(g))
    assert xt.grad is None
    np.testing.assert_allclose(wt.grad.numpy(), ref_conv_grads(x, w, g, (2, 2), (1, 1), (1, 1))[1],
                               rtol=1e-10)


@pytest.mark.parametrize("dw_transposed", [False, True])
@pytest.mark.parametrize("k", [1, 4])  # K = 1 once returned a view of a scratch buffer as dW
@pytest.mark.parametrize("path", PATHS)
def test_outputs_and_gradients_do_not_alias_reused_buffers(path, k, dw_transposed, monkeypatch):
    monkeypatch.setattr(choices, "DW_TRANSPOSED_MIN_COLUMNS", 0 if dw_transposed else 10 ** 12)
    rng = np.random.default_rng(6)
    w = tg.Tensor(rng.standard_normal((k, 3, 3, 3)), requires_grad=True)
    x1 = tg.Tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    op = conv_op(path, x1.data, w.data, padding=(1, 1))
    y1 = op.apply(x1, w, padding=(1, 1))
    y1.backward(tg.Tensor(np.ones(y1.shape)))
    kept = y1.numpy(), x1.grad.numpy(), w.grad.numpy()
    # A second conv of the same shape (same scratch buffers) must not change the first results.
    x2 = tg.Tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    y2 = op.apply(x2, tg.Tensor(rng.standard_normal((k, 3, 3, 3)), requires_grad=True),
                  padding=(1, 1))
    y2.backward(tg.Tensor(rng.standard_normal(y2.shape)))
    for before, now in zip(kept, (y1.data, x1.grad.data, w.grad.data)):
        np.testing.assert_array_equal(before, now)
        for buf in workspace._buffers().values():
            assert not np.may_share_memory(now, buf)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6, 2, 3)).transpose(2, 3, 0, 1)  # (2, 3, 5, 6), not contiguous
    w = rng.standard_normal((3, 3, 4, 2)).transpose(3, 2, 0, 1)  # (2, 4, 3, 3)
    w = w[:, :3]  # (2, 3, 3, 3) strided
    y = F.conv2d(tg.Tensor(x), tg.Tensor(w), padding=1)
    np.testing.assert_allclose(y.numpy(), ref_conv(x, w, None, (1, 1), (1, 1), (1, 1)), rtol=1e-10,
                               atol=1e-12)


# ---- precision ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_float32_is_close_to_float64(path):
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((4, 16, 12, 12)), rng.standard_normal((8, 16, 3, 3)) * 0.1
    b = rng.standard_normal(8)
    g = rng.standard_normal((4, 8, 6, 6))
    out64 = run_conv(x, w, b, (2, 2), (1, 1), (1, 1), path, g)
    out32 = run_conv(*(a.astype(np.float32) for a in (x, w, b)), (2, 2), (1, 1), (1, 1), path,
                     g.astype(np.float32))
    for a32, a64 in zip(out32, out64):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-4 * np.abs(a64).max())


def test_float32_is_the_default_dtype_of_the_result():
    x = tg.Tensor(np.ones((1, 2, 4, 4), np.float32))
    w = tg.Tensor(np.ones((3, 2, 3, 3), np.float32))
    assert F.conv2d(x, w).dtype == np.float32


# ---- errors name the shapes -------------------------------------------------------------------
@pytest.mark.parametrize("x_shape,w_shape,b_shape,kwargs,words", [
    ((2, 3, 8, 8), (4, 5, 3, 3), None, {}, ["3 channels", "(2, 3, 8, 8)", "(4, 5, 3, 3)"]),
    ((1, 1, 4, 4), (1, 1, 7, 7), None, {"padding": 1}, ["7x7", "6x6", "(1, 1, 4, 4)"]),
    ((1, 1, 5, 5), (1, 1, 3, 3), None, {"dilation": 3}, ["extent 7x7", "5x5"]),
    ((1, 2, 4, 4), (3, 2, 3), None, {}, ["weight must be 4-d", "(3, 2, 3)"]),
    ((2, 4, 4), (3, 2, 3, 3), None, {}, ["input must be 4-d", "(2, 4, 4)"]),
    ((1, 2, 4, 4), (3, 2, 3, 3), (2,), {}, ["bias must have shape (3,)", "(2,)"]),
    ((1, 2, 4, 4), (3, 2, 3, 3), None, {"stride": 0}, ["stride"]),
])
def test_errors_name_the_shapes(x_shape, w_shape, b_shape, kwargs, words):
    x, w = tg.Tensor(np.zeros(x_shape)), tg.Tensor(np.zeros(w_shape))
    b = tg.Tensor(np.zeros(b_shape)) if b_shape else None
    with pytest.raises(ValueError) as info:
        F.conv2d(x, w, b, **kwargs)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_dtype_mismatch_is_a_clear_error():
    with pytest.raises(TypeError, match="float32, float64"):
        F.conv2d(tg.Tensor(np.zeros((1, 1, 3, 3), np.float32)), tg.Tensor(np.zeros((1, 1, 3, 3))))


# ---- the CPU path's stride phases ----------------------------------------------------------------
@given(H=st.integers(1, 6), W=st.integers(1, 6), ph=st.integers(0, 3), pw=st.integers(0, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3))
def test_phases_split_the_padded_input_and_merge_back(H, W, ph, pw, sh, sw):
    src = np.random.default_rng(0).standard_normal((2, H, W, 3))  # (C, H, W, N)
    xpad = np.pad(src, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    kernel = (sh, sw)  # a kernel as large as the stride reads every phase
    phases = phases_ops.stride_phases("test", src, (ph, pw), (kernel, (sh, sw), (1, 1)), fresh=True)
    for py in range(sh):
        for px in range(sw):
            want = xpad[:, py::sh, px::sw]  # phase (py, px) = xpad[i*sh + py, j*sw + px]
            np.testing.assert_array_equal(phases[:, py, px, :want.shape[1], :want.shape[2]], want)
    # the NCHW image part
    back = phases_ops.merge_stride_phases(phases, (3, 2, H, W), (ph, pw), (sh, sw))
    np.testing.assert_array_equal(back, src.transpose(3, 0, 1, 2))
