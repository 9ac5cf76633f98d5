"""Matrix product with NumPy's rules: 1-d operands, 2-d, and batched with broadcasting."""
from ..amp.autocast import AutocastGemm
from ..function import Function


class MatMul(AutocastGemm, Function):  # AutocastGemm: the operands' rounding under tg.autocast
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs at least 1-d operands, got shapes {a.shape} "
                             f"and {b.shape}")
        inner_b = b.shape[-2 if b.ndim > 1 else 0]
        if a.shape[-1] != inner_b:
            raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape} "
                             f"(inner sizes {a.shape[-1]} and {inner_b} differ)")
        self.a, self.b = a, b
        try:
            return a @ b
        except ValueError:
            raise ValueError(f"matmul batch dimensions don't broadcast: "
                             f"{a.shape} @ {b.shape}") from None

    def backward(self, g):
        # Treat 1-d operands as a row (a) or a column (b), as NumPy does, then undo it.
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        if self.a.ndim == 1:
            g = g[..., None, :] if self.b.ndim > 1 else g[..., None]
        if self.b.ndim == 1:
            g = g[..., None]
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g @ b.swapaxes(-1, -2)
            if self.a.ndim == 1:
                ga = ga[..., 0, :]
        if self.needs_input_grad[1]:
            gb = a.swapaxes(-1, -2) @ g
            if self.b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb  # batch dimensions are summed back by the engine
