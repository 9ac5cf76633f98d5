"""Hypothesis strategies for gradient checks: shapes (size-1 sides and
broadcasting pairs included) and float64 arrays kept away from each op's kinks.

Arrays are drawn as a seed and built deterministically, so an example is fully
described by a few numbers and can be replayed with one line of Python.
"""
import numpy as np
from hypothesis import strategies as st


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


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
