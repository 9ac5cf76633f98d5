"""Step 3 - broadcasting's sum-to-shape: undo a broadcast in the backward.

When an op broadcasts an input (a bias of shape (C,) added to an (N, C) batch), every
element of that input was used once per broadcast copy, so its gradient is the sum of the
gradients of all the copies. The engine applies that once, for every op: an op's backward
may return a gradient in the broadcast shape, and ``sum_to`` sums it back to the input's.

NumPy's rule: shapes are aligned at the right; a missing leading axis or a side of 1 is
stretched. So: sum away the extra leading axes, then sum (keeping the axis) wherever the
input had a 1 and the gradient has more.
"""


def sum_to(g, shape):
    """Sum the array ``g`` (of a shape ``shape`` broadcasts to) back down to ``shape``."""
    shape = tuple(shape)
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, side in enumerate(shape) if side == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)
