"""The gradient-check case of sync batch norm at one rank, where the global batch is the rank's
own (its exchanges are no-ops; two ranks against one process: tests/test_distributed_ranks.py)."""
import math

from hypothesis import strategies as st

from ..distributed.communicator import SingleProcess
from ..distributed.sync_bn import SyncBatchNorm
from .registry import FLOAT32_TOLERANCE, case


def bn_shape(p):
    """(N, C, H, W) with at least two values per channel (training batch norm needs them)."""
    n, c = p("N", st.integers(1, 3)), p("C", st.integers(1, 4))
    h, w = p("H", st.integers(1, 4)), p("W", st.integers(1, 4))
    return (n, c, h, w) if n * h * w >= 2 else (2, c, h, w)


# float32: as batch_norm_train's (x̂ amplifies rounding by up to 1/sqrt(eps) on a flat channel)

@case("sync_batch_norm", covers=[SyncBatchNorm], float32=FLOAT32_TOLERANCE / math.sqrt(1e-5))
def sync_batch_norm_case(p):
    shape = bn_shape(p)
    c = shape[1]
    return (lambda x, w, b: SyncBatchNorm.apply(x, w, b, comm=SingleProcess(), eps=1e-5)), \
        [p.array("x", shape), p.array("weight", (c,)), p.array("bias", (c,))]
