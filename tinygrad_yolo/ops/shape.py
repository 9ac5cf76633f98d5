"""Shape ops: the gradient is the upstream gradient moved back into place."""
from ..backend import array_module, scatter_add
from ..function import Function


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                             f"into shape {self.shape}") from None

    def backward(self, g):
        return g.reshape(self.in_shape)


class Transpose(Function):
    """Permute axes (NumPy's transpose with an explicit permutation)."""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        if sorted(a % max(x.ndim, 1) for a in self.axes) != list(range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation of the {x.ndim} axes "
                             f"of shape {x.shape}")
        return x.transpose(self.axes)

    def backward(self, g):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = i
        return g.transpose(inverse)


def _is_advanced(index):
    """Integer/boolean array indexing can repeat elements: backward must scatter-add."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") or isinstance(p, (list, tuple)) for p in parts)


class GetItem(Function):
    """x[index] for basic (slices, ints, None, ...) and integer/boolean array indexing."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.in_shape, self.dtype = x.shape, x.dtype
        try:
            return x[self.index]
        except IndexError as e:
            raise IndexError(f"index {self.index!r} is invalid for a tensor of shape "
                             f"{x.shape}: {e}") from None

    def backward(self, g):
        xp = array_module(g)
        grad = xp.zeros(self.in_shape, dtype=g.dtype)
        if _is_advanced(self.index):
            scatter_add(grad, self.index, g)  # repeated indices add up
        else:
            grad[self.index] = g
        return grad


class Concatenate(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        if not xs:
            raise ValueError("concatenate needs at least one tensor")
        ref = xs[0].shape
        for x in xs[1:]:
            if x.ndim != len(ref) or any(a != b for i, (a, b) in enumerate(zip(x.shape, ref))
                                         if i != self.axis % len(ref)):
                raise ValueError(f"concatenate along axis {self.axis}: shapes "
                                 f"{[x.shape for x in xs]} differ outside that axis")
        self.sizes = [x.shape[self.axis] for x in xs]
        return array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, g):
        grads, start = [], 0
        axis = self.axis % g.ndim
        for size in self.sizes:
            index = (slice(None),) * axis + (slice(start, start + size),)
            grads.append(g[index])
            start += size
        return tuple(grads)


class Stack(Function):
    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        if not xs:
            raise ValueError("stack needs at least one tensor")
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"stack needs tensors of one shape, got {[x.shape for x in xs]}")
        return array_module(xs[0]).stack(xs, axis=self.axis)

    def backward(self, g):
        axis = self.axis % g.ndim
        return tuple(g[(slice(None),) * axis + (i,)] for i in range(g.shape[axis]))


class Pad(Function):
    """Constant padding, NumPy-style widths: ((before, after), ...) per axis."""

    def __init__(self, pad_width, value=0.0):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        if any(b < 0 or a < 0 for b, a in self.pad_width):
            raise ValueError(f"pad widths must be non-negative, got {self.pad_width}")
        return array_module(x).pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, g):
        return g[tuple(slice(b, g.shape[i] - a) for i, (b, a) in enumerate(self.pad_width))]
