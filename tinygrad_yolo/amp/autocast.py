"""Autocast: inside ``with autocast("bfloat16" | "float16")`` the GEMM ops -- conv2d, matmul and so
linear -- take their float32 operands rounded to 16 bits and sum the products in float32, as
cuBLAS does with 16-bit inputs and a float32 compute type; every other op (batch norm, the loss,
softmax/log/exp, reductions) runs in float32 as before. Arrays stay float32: a 16-bit operand is
a float32 array holding a 16-bit value, which is exactly what the GPU multiplies -- the reference
the tests check the policy and its error bounds against (NumPy has no bfloat16 GEMM, and
ml_dtypes' bfloat16 sums accumulate in bfloat16). float64 operands are left alone, as PyTorch's
autocast leaves them, so gradient checks in float64 see no rounding.

The policy sits at the ops' apply boundary (``AutocastGemm``, one base class of Conv2d and
MatMul): the operands enter through ``RoundOperand`` (forward: round; backward: the gradient
passes unchanged, a cast's backward) and the result leaves through ``RoundGradient`` (forward:
unchanged; backward: the incoming gradient rounded), so the backward GEMMs see 16-bit operands
too. Parameters and their gradients stay float32.
"""
import contextlib
import threading

import numpy as np

from ..backend import array_module
from ..function import Function

DTYPES = ("bfloat16", "float16")
_state = threading.local()


def autocast_dtype():
    """The 16-bit type GEMM operands are rounded to here, or None outside autocast."""
    return getattr(_state, "dtype", None)


@contextlib.contextmanager
def autocast(dtype="bfloat16", enabled=True):
    """Round the GEMM ops' float32 operands to ``dtype`` ("bfloat16" or "float16") inside the
    block (nothing when ``enabled`` is False). Blocks nest; the outer setting comes back after."""
    if dtype not in DTYPES:
        raise ValueError(f"autocast dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    before = autocast_dtype()
    _state.dtype = dtype if enabled else None
    try:
        yield
    finally:
        _state.dtype = before


AMP_MODES = {"off": None, "bf16": "bfloat16", "fp16": "float16"}  # the commands' --amp


def autocast_mode(mode):
    """The autocast block of the commands' ``--amp MODE`` ("off", "bf16" or "fp16")."""
    if mode not in AMP_MODES:
        raise ValueError(f"--amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    return autocast(AMP_MODES[mode] or "bfloat16", enabled=AMP_MODES[mode] is not None)


def round_to_bfloat16(a):
    """float32 array -> float32 array of the nearest bfloat16 values (round to nearest, ties to
    even, on the bit pattern: the upper 16 bits of a float32 are a bfloat16). NaN stays NaN."""
    xp = array_module(a)
    bits = xp.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    lsb = (bits >> np.uint32(16)) & np.uint32(1)
    rounded = ((bits + np.uint32(0x7FFF) + lsb) & np.uint32(0xFFFF0000)).view(np.float32)
    return xp.where(xp.isnan(a), a, rounded)  # a NaN's payload could carry into the exponent


def round_to_float16(a):
    """float32 array -> float32 array of the nearest float16 values (beyond ±65504: ±inf)."""
    with np.errstate(over="ignore"):  # inf is the answer there (GradScaler looks for it)
        return a.astype(np.float16).astype(np.float32)


ROUND = {"bfloat16": round_to_bfloat16, "float16": round_to_float16}


def _rounded(a, dtype):
    return ROUND[dtype](a) if a.dtype == np.float32 else a


class RoundOperand(Function):
    """A GEMM operand rounded to 16 bits; the gradient passes back unchanged."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, a):
        return _rounded(a, self.dtype)

    def backward(self, g):
        return g


class RoundGradient(Function):
    """The identity forward; backward rounds the gradient, which the GEMMs of the op before
    take as an operand."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, y):
        return y.view()

    def backward(self, g):
        return _rounded(g, self.dtype)


def _float32(t):
    return getattr(t, "dtype", None) == np.float32


class AutocastGemm:
    """Base class of the GEMM Functions (Conv2d, MatMul): under autocast their first two inputs
    enter rounded to 16 bits and the gradient of their result comes back rounded; outside it,
    or for float64 inputs, they apply as they are."""

    @classmethod
    def apply(cls, *inputs, **kwargs):
        dtype = autocast_dtype()
        if dtype is None or not any(_float32(t) for t in inputs[:2]):
            return super().apply(*inputs, **kwargs)
        operands = [RoundOperand.apply(t, dtype=dtype) if _float32(t) else t for t in inputs[:2]]
        y = super().apply(*operands, *inputs[2:], **kwargs)
        return RoundGradient.apply(y, dtype=dtype)
