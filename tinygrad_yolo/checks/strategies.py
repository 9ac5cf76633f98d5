"""Hypothesis strategies for gradient checks: shapes (size-1 sides and
broadcasting pairs included), float64 arrays kept away from each op's kinks, and
the memory layout each array comes in.

Arrays are drawn as a seed and built deterministically, so an example is fully
described by a few numbers and can be replayed with one line of Python.
"""
import numpy as np
from hypothesis import strategies as st


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    sides = st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims)
    return sides.map(tuple)


@st.composite
def broadcastable_shapes(draw, min_dims=0, max_dims=3, max_side=4):
    """Two shapes that broadcast together: the second drops leading axes and/or
    turns some sides into 1 (either operand may be the broadcast one)."""
    full = draw(shapes(min_dims, max_dims, 1, max_side))
    cut = draw(st.integers(0, len(full)))
    other = tuple(1 if draw(st.booleans()) else s for s in full[cut:])
    return (full, other) if draw(st.booleans()) else (other, full)


def seeds():
    return st.integers(0, 2 ** 16 - 1)


# How to keep values away from kinks and singularities, by kind:
#   normal    N(0, 1)                       smooth ops
#   positive  uniform [0.5, 2]              log, sqrt, pow with fractional exponents, divisors
#   nonzero   |x| in [0.2, 2], random sign  relu, abs, leaky_relu (kink at 0), divisors
#   distinct  a shuffled grid, gaps >= 0.05 max, max-pool, maximum (no ties)
def make_array(shape, kind="normal", seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "nonzero":
        return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    if kind == "distinct":
        n = int(np.prod(shape))
        return (rng.permutation(n) * 0.05 - n * 0.025 + rng.uniform(0, 0.01)).reshape(shape)
    raise ValueError(f"unknown array kind {kind!r}")


# Memory layouts an op must handle (MiniTorch's tensor strategies and Chainer's non-contiguous
# tests draw them too): the same values as the contiguous array, in another arrangement --
#   contiguous     C order
#   permuted       axes in memory in another order: channels last for 3 axes or more (what
#                  x.permute(0, 3, 1, 2) of an NHWC array gives), transposed for 2
#   reversed       every axis with a negative stride (x[::-1, ::-1])
#   step2          every axis with twice its stride (x[::2, ::2] of a larger array)
#   broadcast      stride 0 along the first axis longer than 1 (np.broadcast_to): a read-only
#                  view whose values repeat along that axis, so this one does change the values
LAYOUTS = ("contiguous", "permuted", "reversed", "step2", "broadcast")
STRIDED = LAYOUTS[1:]
NO_BROADCAST = LAYOUTS[:-1]  # for ops with a kink at ties, which repeated values would hit


def with_layout(a, layout):
    """``a`` (C-contiguous) in ``layout``: a view of a new buffer, on a's device."""
    from ..backend import array_module
    xp = array_module(a)
    if layout == "contiguous" or a.ndim == 0:
        return a
    if layout == "permuted" and a.ndim >= 2:
        order = (1, 0) if a.ndim == 2 else (0,) + tuple(range(2, a.ndim)) + (1,)
        inverse = tuple(order.index(k) for k in range(a.ndim))
        return xp.ascontiguousarray(a.transpose(order)).transpose(inverse)
    if layout in ("reversed", "permuted"):  # (permuted with one axis: reversed instead)
        flip = (slice(None, None, -1),) * a.ndim
        return a[flip].copy()[flip]
    if layout == "step2":
        buf = xp.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
        view = buf[(slice(None, None, 2),) * a.ndim]
        view[...] = a
        return view
    if layout == "broadcast":
        axis = next((k for k, n in enumerate(a.shape) if n > 1), None)
        if axis is None:
            return a
        first = a[(slice(None),) * axis + (slice(0, 1),)]
        return xp.broadcast_to(first, a.shape)
    raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")


def is_strided(a):
    """True when ``a`` is not one contiguous block in C order (a size-1 array always is)."""
    return not a.flags.c_contiguous
