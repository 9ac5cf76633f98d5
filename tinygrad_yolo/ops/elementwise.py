"""Elementwise arithmetic. Broadcasting is allowed: the engine (Tensor.backward)
sums each gradient back to its input's shape, so these backwards stay one-liners."""
from ..backend import array_module, device_of
from ..function import Function


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = g * self.b if self.needs_input_grad[0] else None
        gb = g * self.a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.b = b
        self.out = a / b
        return self.out

    def backward(self, g):
        ga = g / self.b
        gb = -ga * self.out if self.needs_input_grad[1] else None  # d(a/b)/db = -(a/b)/b
        return (ga if self.needs_input_grad[0] else None), gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """x ** p for a scalar exponent p."""

    def __init__(self, exponent):
        self.p = exponent

    def forward(self, x):
        self.x = x
        return x ** self.p

    def backward(self, g):
        if self.p == 2:
            return g * (2 * self.x)
        return g * (self.p * self.x ** (self.p - 1))


class Exp(Function):
    def forward(self, x):
        self.out = array_module(x).exp(x)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, g):
        return g / self.x


class Sqrt(Function):
    def forward(self, x):
        self.out = array_module(x).sqrt(x)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return abs(x)

    def backward(self, g):
        return g * array_module(g).sign(self.x)


class Clip(Function):
    """Clamp into [lo, hi]; the gradient passes where the input was inside."""

    def __init__(self, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError("clip needs at least one of min and max")
        self.lo, self.hi = lo, hi

    def forward(self, x):
        self.x = x
        return array_module(x).clip(x, self.lo, self.hi)

    def backward(self, g):
        inside = True
        if self.lo is not None:
            inside = self.x >= self.lo
        if self.hi is not None:
            inside = inside & (self.x <= self.hi)
        return g * inside


class Where(Function):
    """condition ? a : b, with a constant boolean condition."""

    def __init__(self, condition):
        self.cond = condition

    def forward(self, a, b):
        if device_of(self.cond) != device_of(a):
            raise RuntimeError(f"where: condition is on {device_of(self.cond)} but the values are "
                               f"on {device_of(a)}")
        return array_module(a).where(self.cond, a, b)

    def backward(self, g):
        xp = array_module(g)
        ga = xp.where(self.cond, g, 0) if self.needs_input_grad[0] else None
        gb = xp.where(self.cond, 0, g) if self.needs_input_grad[1] else None
        return ga, gb


class Maximum(Function):
    """Elementwise max; on ties the gradient is split evenly (as PyTorch does)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).maximum(a, b)

    def backward(self, g):
        share = (self.a > self.b) + 0.5 * (self.a == self.b)
        return g * share, g * (1 - share)


class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).minimum(a, b)

    def backward(self, g):
        share = (self.a < self.b) + 0.5 * (self.a == self.b)
        return g * share, g * (1 - share)
