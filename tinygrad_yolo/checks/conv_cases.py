"""Gradient-check cases for convolution, pooling and batch normalisation: every implementation
in dispatch.py's tables, each reference by its own case, the others by name or as the rule picks.

Shapes: N 1-3, C 1-4, H, W 1-9, K 1-4, kernel 1-3, stride 1-3, padding 0-2, dilation 1-2, drawn
so that every combination is valid (the input is drawn last, at least as large as the dilated
kernel minus the padding).
"""
import math

import numpy as np
from hypothesis import strategies as st

from .. import dispatch
from ..backend import to_device
from ..ops import conv as CV
from ..ops import norm as NM
from ..ops import pool as PL
from .registry import FLOAT32_TOLERANCE, case
from .strategies import NO_BROADCAST


def _side(p, name, extent, padding, max_side=9):
    """An input side length that fits a window of ``extent`` after ``padding`` on both ends."""
    return p(name, st.integers(max(1, extent - 2 * padding), max_side))


def _covers(table):
    """Every implementation in a dispatch table (what a case that draws its paths checks)."""
    return [dispatch.resolve(table, name) for name in table]


def _implementation(table, path, x, rule, *args):
    """Entry ``path`` of ``table``; the one ``rule`` picks from x and ``args`` for None, and on a
    GPU, where the CPU paths can't run (there it is the CUDA path: tests/test_gpu.py)."""
    if path is None or x.device != "cpu":
        path = rule(x.data, *args)
    return dispatch.resolve(table, path)


def _conv_problem(p, pointwise=False):
    """(conv arguments, input arrays) of one drawn convolution; ``pointwise``: a 1x1 kernel
    without padding."""
    n, c, k = p("N", st.integers(1, 3)), p("C", st.integers(1, 4)), p("K", st.integers(1, 4))
    R, S = (1, 1) if pointwise else p("kernel", st.tuples(st.integers(1, 3), st.integers(1, 3)))
    stride = p("stride", st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = (0, 0) if pointwise else p("padding", st.tuples(st.integers(0, 2), st.integers(0, 2)))
    dilation = p("dilation", st.tuples(st.integers(1, 2), st.integers(1, 2)))
    H = _side(p, "H", dilation[0] * (R - 1) + 1, padding[0])
    W = _side(p, "W", dilation[1] * (S - 1) + 1, padding[1])
    bias = p("bias", st.booleans())
    arrays = [p.array("x", (n, c, H, W)), p.array("w", (k, c, R, S))]
    return dict(stride=stride, padding=padding, dilation=dilation), \
        arrays + ([p.array("b", (k,))] if bias else [])


@case("conv2d", covers=[CV.Conv2d])
def conv2d_case(p):
    """The reference, im2col and one GEMM (on NumPy, or CuPy on a GPU)."""
    kw, arrays = _conv_problem(p)
    return (lambda x, w, *b: CV.Conv2d.apply(x, w, *b, **kw)), arrays


_CONV2D_CPU_PATHS = ("tiled", "images", "images-wide", "pointwise")


@case("conv2d_paths", covers=[op for op in _covers(dispatch.CONV2D) if op is not CV.Conv2d])
def conv2d_paths_case(p):
    """Every other entry of dispatch.CONV2D: a CPU path by name, or (None) the one the rule
    picks."""
    path = p("path", st.sampled_from((None,) + _CONV2D_CPU_PATHS))
    kw, arrays = _conv_problem(p, pointwise=path == "pointwise")

    def conv(x, w, *b):
        op = _implementation(dispatch.CONV2D, path, x, dispatch.conv2d_path, w.data,
                             kw["stride"], kw["padding"], kw["dilation"])
        return op.apply(x, w, *b, **kw)
    return conv, arrays


def _pool_params(p):
    kh, kw = p("kernel", st.tuples(st.integers(1, 3), st.integers(1, 3)))
    stride = p("stride", st.sampled_from([None, (1, 1), (2, 1), (2, 2), (3, 2), (1, 3)]))
    padding = p("padding", st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2)))
    shape = (p("N", st.integers(1, 3)), p("C", st.integers(1, 4)),
             _side(p, "H", kh, padding[0]), _side(p, "W", kw, padding[1]))
    return (kh, kw), stride, padding, shape


def _pool_case(p, table, rule, cpu_paths, kind="normal"):
    """(fn, [x]) of one drawn pooling call: an entry of ``table`` by name among ``cpu_paths``,
    or (None) the one ``rule`` picks."""
    kernel, stride, padding, shape = _pool_params(p)
    path = p("path", st.sampled_from((None,) + cpu_paths))

    def pool(x):
        op = _implementation(table, path, x, rule, kernel, stride, padding)
        return op.apply(x, kernel_size=kernel, stride=stride, padding=padding)
    return pool, [p.array("x", shape, kind)]


@case("max_pool2d", covers=_covers(dispatch.MAX_POOL2D), layouts=NO_BROADCAST)  # ties: see "max"
def max_pool2d_case(p):
    # "distinct" values: no ties, so the max is differentiable everywhere it is checked
    return _pool_case(p, dispatch.MAX_POOL2D, dispatch.max_pool2d_path, ("reference", "separable"),
                      "distinct")


@case("avg_pool2d", covers=_covers(dispatch.AVG_POOL2D))
def avg_pool2d_case(p):
    return _pool_case(p, dispatch.AVG_POOL2D, dispatch.avg_pool2d_path,
                      ("reference", "channels-last"))


@case("adaptive_avg_pool2d", covers=[PL.AdaptiveAvgPool2d])
def adaptive_avg_pool2d_case(p):
    shape = (p("N", st.integers(1, 3)), p("C", st.integers(1, 4)),
             p("H", st.integers(1, 9)), p("W", st.integers(1, 9)))
    out = p("output_size", st.sampled_from([1, 2, 3, (2, 3), (4, 1), (1, 5)]))
    return (lambda x: PL.AdaptiveAvgPool2d.apply(x, output_size=out)), [p.array("x", shape)]


def _bn_shape(p):
    c = p("C", st.integers(1, 4))
    if p("rank", st.sampled_from([2, 4])) == 2:
        return (p("N", st.integers(2, 6)), c)
    # at least two values per channel: N * H * W >= 2
    n, h, w = p("N", st.integers(1, 3)), p("H", st.integers(1, 4)), p("W", st.integers(1, 4))
    return (n, c, h, w) if n * h * w >= 2 else (2, c, h, w)


def _batch_norm(path, x, w, b, **kw):
    """BATCH_NORM entry ``path`` (or the rule's choice) applied to x, w, b."""
    op = _implementation(dispatch.BATCH_NORM, path, x, dispatch.batch_norm_path, w.data, b.data,
                         kw["running_mean"], kw["running_var"], kw["training"])
    return op.apply(x, w, b, **kw)


# float32: x̂ = (x - mean) / sqrt(var + eps) amplifies rounding by up to 1/sqrt(eps) ≈ 316 where a
# channel's variance is near 0 (a broadcast input repeats one value along the batch)
BATCH_NORM_TRAIN_FLOAT32 = FLOAT32_TOLERANCE / math.sqrt(1e-5)


@case("batch_norm_train", covers=[NM.BatchNorm], float32=BATCH_NORM_TRAIN_FLOAT32)
def batch_norm_train_case(p):
    """The reference in training mode (the batch's statistics)."""
    shape = _bn_shape(p)
    c = shape[1]
    return (lambda x, w, b: NM.BatchNorm.apply(x, w, b, running_mean=None, running_var=None,
                                               training=True, eps=1e-5)), \
        [p.array("x", shape), p.array("weight", (c,)), p.array("bias", (c,))]


@case("batch_norm_train_paths", float32=BATCH_NORM_TRAIN_FLOAT32,
      covers=[op for op in _covers(dispatch.BATCH_NORM) if op is not NM.BatchNorm])
def batch_norm_train_paths_case(p):
    """The other entries of dispatch.BATCH_NORM in training mode: "chunked" by name or as the
    rule's choice; on a GPU the rule's, the fused CUDA op."""
    shape = _bn_shape(p)
    c = shape[1]
    path = p("path", st.sampled_from([None, "chunked"]))
    return (lambda x, w, b: _batch_norm(path, x, w, b, running_mean=None, running_var=None,
                                        training=True, eps=1e-5)), \
        [p.array("x", shape), p.array("weight", (c,)), p.array("bias", (c,))]


@case("batch_norm_eval", covers=_covers(dispatch.BATCH_NORM))
def batch_norm_eval_case(p):
    """Every entry of dispatch.BATCH_NORM in eval mode (the running statistics)."""
    shape = _bn_shape(p)
    c = shape[1]
    rng = np.random.default_rng(p("stats_seed", st.integers(0, 99)))
    mean, var = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    path = p("path", st.sampled_from([None, "reference", "chunked"]))

    def fn(x, w, b):  # running statistics live on the input's device
        return _batch_norm(path, x, w, b, running_mean=to_device(mean, x.device),
                           running_var=to_device(var, x.device), training=False)
    return fn, [p.array("x", shape), p.array("weight", (c,)), p.array("bias", (c,))]
