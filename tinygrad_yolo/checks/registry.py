"""The registry of gradient-check cases: the single list that both the test
suite and `tinygrad-yolo gradcheck` walk.

A case is a function of ``p`` that draws its parameters with ``p(name, strategy)``
and its arrays with ``p.array(name, shape, kind)``, and returns ``(fn, inputs)``:

    @case("mul", covers=[elementwise.Mul])
    def mul(p):
        sa, sb = p("shapes", broadcastable_shapes())
        return (lambda a, b: a * b), [p.array("a", sa), p.array("b", sb)]

Under hypothesis ``p`` draws; to replay an example ``p`` holds fixed values:
``run_case("mul", shapes=((2, 3), (3,)), a_seed=1, b_seed=2)``.

Every array a case returns also gets a memory layout (``layout0``, ``layout1``, ...: see
strategies.LAYOUTS), drawn from the case's ``layouts``, so each op is checked on permuted,
reversed, step-2 and broadcast inputs as well as contiguous ones (a replay without them is
contiguous). Beside the float64 gradient check two more comparisons use the same examples:
``check_layouts`` (an op gives the same values and gradients for a strided input as for its
contiguous copy) and ``check_float32`` (float32 inputs against the float64 result, within the
case's ``float32`` tolerance).
"""
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from ..backend import to_device, to_numpy, xp_for
from ..gradcheck import check_gradients
from .strategies import LAYOUTS, make_array, seeds, with_layout

CASES = {}

# float32 against float64: max |f32 - f64| over an output (or a gradient), relative to the
# largest |f64| in it (at least 1). float32 rounds at 6e-8; 1e-5 leaves ~170 roundings for the
# few dozen operations an element of these small cases goes through.
FLOAT32_TOLERANCE = 1e-5
# a strided input against its contiguous copy, in float64: the same up to rounding (6 ulps seen)
LAYOUT_TOLERANCE = 1e-13


@dataclass
class Case:
    name: str
    build: callable
    covers: tuple
    tolerances: dict = field(default_factory=dict)
    layouts: tuple = LAYOUTS        # the layouts the float64 gradient check draws from
    float32: float = FLOAT32_TOLERANCE


def case(name, covers=(), layouts=LAYOUTS, float32=FLOAT32_TOLERANCE, **tolerances):
    """Register a gradient-check case; ``covers`` lists the Function classes it exercises,
    ``layouts`` the input layouts its gradient check may use (a case whose values must not
    repeat leaves out "broadcast", saying why), ``float32`` its tolerance against float64."""
    def register(build):
        if name in CASES:
            raise ValueError(f"gradient-check case {name!r} is registered twice")
        CASES[name] = Case(name, build, tuple(covers), tolerances, tuple(layouts), float32)
        return build
    return register


class Params:
    """Draws parameters through hypothesis, or replays fixed ones."""

    def __init__(self, draw=None, fixed=None):
        self._draw = draw
        self.values = dict(fixed or {})

    def __call__(self, name, strategy):
        if name not in self.values:
            if self._draw is None:
                raise KeyError(f"parameter {name!r} is needed to replay this case")
            self.values[name] = self._draw(strategy, label=name)
        return self.values[name]

    def array(self, name, shape, kind="normal"):
        return make_array(shape, kind, self(name + "_seed", seeds()))


def covered_functions():
    return {fn for c in CASES.values() for fn in c.covers}


def build_example(name, draw=None, layouts=None, **fixed):
    """(fn, arrays, params) for one example of case ``name``: float64 NumPy arrays, each in the
    layout drawn for it from ``layouts`` (default: the case's)."""
    if name not in CASES:
        raise KeyError(f"no gradient-check case named {name!r}; known: {', '.join(sorted(CASES))}")
    p = Params(draw, fixed)
    fn, arrays = CASES[name].build(p)
    choices = st.sampled_from(CASES[name].layouts if layouts is None else tuple(layouts))
    laid_out = []
    for i, a in enumerate(arrays):
        key = f"layout{i}"
        layout = p(key, choices) if draw is not None or key in p.values else "contiguous"
        # (np.asarray, not ascontiguousarray, which turns a drawn 0-d shape into (1,))
        laid_out.append(with_layout(np.asarray(a, dtype=np.float64, order="C"), layout))
    return fn, laid_out, p.values


def on_device(a, device):
    """NumPy array ``a`` on ``device`` in the same layout (to_device would copy it contiguous)."""
    if device == "cpu" or a.flags.c_contiguous:
        return to_device(a, device)
    return same_layout(a, xp_for(device))


def same_layout(a, xp):
    """A copy of NumPy view ``a`` made by module ``xp`` with a's strides: the whole buffer a views
    is copied, and a view with a's offset and strides taken of it."""
    owner = a
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    if not owner.flags.c_contiguous:  # (not one of strategies.LAYOUTS)
        return xp.asarray(np.ascontiguousarray(a))
    start = (a.__array_interface__["data"][0] - owner.__array_interface__["data"][0]) // a.itemsize
    flat = xp.array(owner).reshape(-1)[start:]  # a copy (onto the device, for CuPy)
    return xp.lib.stride_tricks.as_strided(flat, a.shape, a.strides)


def _tensors(arrays, device, dtype=np.float64):
    from ..tensor import Tensor
    return [Tensor(on_device(a if a.dtype == dtype else a.astype(dtype), device),
                   requires_grad=True) for a in arrays]


def check_example(name, fn, arrays, device="cpu", seed=0):
    """Gradient-check ``fn`` at ``arrays`` (float64, in their layouts) on ``device``."""
    return check_gradients(fn, _tensors(arrays, device), seed=seed, **CASES[name].tolerances)


def _value_and_grads(fn, tensors, seed=0):
    """fn's output and the gradient of sum(output * v) for a fixed random v, as NumPy arrays."""
    out = fn(*tensors)
    v = np.random.default_rng(seed).standard_normal(out.shape)
    if out.requires_grad:
        xp = xp_for(out.device)
        out.backward(xp.asarray(v, dtype=out.dtype))
    grads = [to_numpy(t.grad.data) if t.grad is not None else np.zeros(t.shape) for t in tensors]
    return to_numpy(out.data), grads


def _worst_error(results, references):
    """max |result - reference| over each pair of arrays, relative to the largest |reference|
    in that array (at least 1), worst over the pairs."""
    worst = 0.0
    for a, b in zip(results, references):
        if b.size:
            error = np.abs(a.astype(np.float64) - b).max() / max(1.0, np.abs(b).max())
            worst = max(worst, float(error))
    return worst


def check_layouts(fn, arrays, device="cpu"):
    """How far fn's value and gradients at ``arrays`` as laid out are from those at their
    contiguous copies (see _worst_error): 0 or float64 rounding (a GEMM may sum in another order
    for another layout), LAYOUT_TOLERANCE at most."""
    strided = _value_and_grads(fn, _tensors(arrays, device))
    dense = _value_and_grads(fn, _tensors([np.ascontiguousarray(a) for a in arrays], device))
    return _worst_error([strided[0]] + strided[1], [dense[0]] + dense[1])


def check_float32(fn, arrays, device="cpu"):
    """How far fn's float32 value and gradients are from float64's (see _worst_error), to
    compare with the case's ``float32`` tolerance."""
    f64 = _value_and_grads(fn, _tensors(arrays, device))
    f32 = _value_and_grads(fn, _tensors(arrays, device, np.float32))
    return _worst_error([f32[0]] + f32[1], [f64[0]] + f64[1])


def run_case(name, device="cpu", draw=None, **fixed):
    """Build and check one example; returns (GradcheckResult, params)."""
    fn, arrays, params = build_example(name, draw, **fixed)
    return check_example(name, fn, arrays, device), params


def repro_line(name, params, device="cpu"):
    """One line of Python that replays an example."""
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    dev = f", device={device!r}" if device != "cpu" else ""
    return f"from tinygrad_yolo.checks import run_case; print(run_case({name!r}{dev}, {args})[0])"
