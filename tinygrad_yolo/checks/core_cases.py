"""Gradient-check cases for the core ops (elementwise, reductions, shape, matmul,
activations, losses). Each case draws shapes and keeps values off the op's kinks."""
import numpy as np
from hypothesis import strategies as st

from ..backend import to_device
from ..ops import activation as A
from ..ops import copy as C
from ..ops import elementwise as E
from ..ops import loss as L
from ..ops import matmul as M
from ..ops import reduce as R
from ..ops import shape as S
from .registry import case
from .strategies import LAYOUTS, NO_BROADCAST, broadcastable_shapes, shapes


def _binary(name, fn, op, kind_b="normal"):
    @case(name, covers=[op])
    def build(p):
        sa, sb = p("shapes", broadcastable_shapes())
        return fn, [p.array("a", sa), p.array("b", sb, kind_b)]


_binary("add", lambda a, b: a + b, E.Add)
_binary("sub", lambda a, b: a - b, E.Sub)
_binary("mul", lambda a, b: a * b, E.Mul)
_binary("div", lambda a, b: a / b, E.Div, kind_b="nonzero")


def _unary(name, fn, op, kind="normal"):
    @case(name, covers=[op])
    def build(p):
        return fn, [p.array("x", p("shape", shapes()), kind)]


_unary("neg", lambda x: -x, E.Neg)
_unary("exp", lambda x: x.exp(), E.Exp)
_unary("log", lambda x: x.log(), E.Log, "positive")
_unary("sqrt", lambda x: x.sqrt(), E.Sqrt, "positive")
_unary("abs", lambda x: x.abs(), E.Abs, "nonzero")
_unary("relu", lambda x: x.relu(), A.ReLU, "nonzero")
_unary("sigmoid", lambda x: x.sigmoid(), A.Sigmoid)
_unary("tanh", lambda x: x.tanh(), A.Tanh)
_unary("cast", lambda x: C.Cast.apply(x, dtype=np.dtype(np.float64)) * 3.0, C.Cast)
_unary("clone", lambda x: x.clone() * x, C.Clone)


@case("pow", covers=[E.Pow])
def pow_case(p):
    exponent = p("exponent", st.sampled_from([2, 3, 0.5, -1.0, 1.5, -0.5]))
    return (lambda x: x ** exponent), [p.array("x", p("shape", shapes()), "positive")]


@case("leaky_relu", covers=[A.LeakyReLU])
def leaky_relu_case(p):
    slope = p("negative_slope", st.sampled_from([0.01, 0.1, 0.2]))
    return (lambda x: x.leaky_relu(slope)), [p.array("x", p("shape", shapes()), "nonzero")]


@case("clip", covers=[E.Clip])
def clip_case(p):
    lo, hi = p("bounds", st.sampled_from([(-0.5, 0.5), (None, 0.3), (-0.3, None)]))
    # 'distinct' keeps every value at least 0.05 away from the others, so a
    # grid offset of 0.0137 keeps values off the bounds.
    return (lambda x: x.clip(lo, hi)), [p.array("x", p("shape", shapes()), "distinct") + 0.0137]


@case("where", covers=[E.Where])
def where_case(p):
    from ..creation import where
    sa, sb = p("shapes", broadcastable_shapes())
    rng = np.random.default_rng(p("cond_seed", st.integers(0, 99)))
    cond = rng.random(np.broadcast_shapes(sa, sb)) > 0.5
    inputs = [p.array("a", sa), p.array("b", sb)]
    # the condition is a constant array: move it to the device the check runs on
    return (lambda a, b: where(to_device(cond, a.device), a, b)), inputs


def _extremum(name, fn, op):
    @case(name, covers=[op])
    def build(p):
        sa, sb = p("shapes", broadcastable_shapes())
        # a and b come from one shuffled grid, so a == b never happens
        both = p.array("ab", (2,) + np.broadcast_shapes(sa, sb), "distinct")
        return fn, [_reduce_to(both[0], sa), _reduce_to(both[1], sb) + 0.011]


def _reduce_to(x, shape):
    """Take the leading slice of x that has ``shape`` (for broadcast operands)."""
    x = x[(0,) * (x.ndim - len(shape))] if x.ndim > len(shape) else x
    return np.ascontiguousarray(x[tuple(slice(0, s) for s in shape)])


_extremum("maximum", lambda a, b: a.maximum(b), E.Maximum)
_extremum("minimum", lambda a, b: a.minimum(b), E.Minimum)


def _axis_args(p, ndim):
    axes = [None] + list(range(-ndim, ndim)) + ([(0, ndim - 1)] if ndim > 1 else [])
    axis = p("axis", st.sampled_from(axes))
    return axis, p("keepdims", st.booleans())


def _reduction(name, method, op, kind="normal", layouts=LAYOUTS):
    @case(name, covers=[op], layouts=layouts)
    def build(p):
        shape = p("shape", shapes(1, 3))
        axis, keepdims = _axis_args(p, len(shape))
        inputs = [p.array("x", shape, kind)]
        return (lambda x: getattr(x, method)(axis=axis, keepdims=keepdims)), inputs


_reduction("sum", "sum", R.Sum)
_reduction("mean", "mean", R.Mean)
# a broadcast input repeats values, and tied maxima are a kink (the gradient is split between
# them, a perturbation moves it to one): its gradient check leaves broadcast views out
_reduction("max", "max", R.Max, "distinct", layouts=NO_BROADCAST)


@case("softmax", covers=[A.Softmax])
def softmax_case(p):
    shape = p("shape", shapes(1, 3))
    axis = p("axis", st.integers(-len(shape), len(shape) - 1))
    return (lambda x: x.softmax(axis)), [p.array("x", shape)]


@case("log_softmax", covers=[A.LogSoftmax])
def log_softmax_case(p):
    shape = p("shape", shapes(1, 3))
    axis = p("axis", st.integers(-len(shape), len(shape) - 1))
    return (lambda x: x.log_softmax(axis)), [p.array("x", shape)]


@case("reshape", covers=[S.Reshape])
def reshape_case(p):
    shape = p("shape", shapes(1, 3))
    return (lambda x: x.reshape(-1, 1) * x.reshape(1, -1)), [p.array("x", shape)]


@case("transpose", covers=[S.Transpose])
def transpose_case(p):
    shape = p("shape", shapes(1, 4))
    perm = p("perm", st.permutations(range(len(shape))))
    # a distinct weight per element, so a wrong permutation changes the gradient; on x's device
    # and dtype
    weights = np.arange(int(np.prod(shape))).reshape([shape[i] for i in perm])
    inputs = [p.array("x", shape)]
    return (lambda x: x.permute(*perm) * to_device(weights.astype(x.dtype), x.device)), inputs


@case("getitem", covers=[S.GetItem])
def getitem_case(p):
    shape = p("shape", shapes(2, 3, 2, 5))
    kind = p("index_kind", st.sampled_from(["slice", "int", "array", "bool"]))
    if kind == "slice":
        index = (slice(1, None), slice(None, None, 2))
    elif kind == "int":
        index = (shape[0] - 1, Ellipsis)
    elif kind == "array":  # repeated indices: the backward must add, not overwrite
        index = (np.array([0, shape[0] - 1, 0, 1]), slice(None))
    else:
        index = np.arange(shape[0]) % 2 == 0
    return (lambda x: x[index]), [p.array("x", shape)]


@case("concatenate", covers=[S.Concatenate])
def concatenate_case(p):
    from ..creation import concatenate
    shape = p("shape", shapes(1, 3))
    axis = p("axis", st.integers(0, len(shape) - 1))
    other = tuple(s + 1 if i == axis else s for i, s in enumerate(shape))
    inputs = [p.array("a", shape), p.array("b", other)]
    return (lambda a, b: concatenate([a, b, a], axis=axis)), inputs


@case("stack", covers=[S.Stack])
def stack_case(p):
    from ..creation import stack
    shape = p("shape", shapes(0, 3))
    axis = p("axis", st.integers(0, len(shape)))
    inputs = [p.array("a", shape), p.array("b", shape)]
    return (lambda a, b: stack([a, b, a * b], axis=axis)), inputs


@case("pad", covers=[S.Pad])
def pad_case(p):
    shape = p("shape", shapes(1, 3))
    widths = [p(f"pad{i}", st.tuples(st.integers(0, 2), st.integers(0, 2)))
              for i in range(len(shape))]
    value = p("value", st.sampled_from([0.0, 1.5]))
    return (lambda x: x.pad(widths, value) * x.pad(widths, value)), [p.array("x", shape)]


@case("matmul", covers=[M.MatMul])
def matmul_case(p):
    forms = ["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "broadcast", "3d@1d"]
    form = p("form", st.sampled_from(forms))
    n, k, m, b = (p(name, st.integers(1, 4)) for name in "nkmb")
    sa, sb = {"1d@1d": ((k,), (k,)), "1d@2d": ((k,), (k, m)), "2d@1d": ((n, k), (k,)),
              "2d@2d": ((n, k), (k, m)), "batched": ((b, n, k), (b, k, m)),
              "broadcast": ((b, 1, n, k), (2, k, m)), "3d@1d": ((b, n, k), (k,))}[form]
    return (lambda a, c: a @ c), [p.array("a", sa), p.array("b", sb)]


@case("cross_entropy", covers=[L.CrossEntropy])
def cross_entropy_case(p):
    from ..nn import functional as F
    n, c = p("n", st.integers(1, 5)), p("classes", st.integers(1, 5))
    target = np.random.default_rng(p("target_seed", st.integers(0, 99))).integers(0, c, n)
    reduction = p("reduction", st.sampled_from(["mean", "sum"]))
    return (lambda x: F.cross_entropy(x, target, reduction)), [p.array("logits", (n, c))]
