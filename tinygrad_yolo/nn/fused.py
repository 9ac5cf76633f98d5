"""``bn_act``: a BatchNorm module, an optional residual and a ReLU as the models write them, one
fused op where batch norm runs fused (dispatch.batch_norm_fused: on CUDA, cuda/norm.py) and the
separate ops elsewhere, in the order the models always made them (the CPU's graph and numbers
are those of the plain module calls)."""
from .. import dispatch


def bn_act(bn, x, relu, residual=None):
    """relu(bn(x) [+ residual()]). ``residual``: a function computing the shortcut (called after bn
    where the ops are separate, before it where the add is fused)."""
    fusable = type(relu).__name__ == "ReLU" and getattr(bn, "fusable", False)
    if fusable and dispatch.batch_norm_fused(x.data):
        return bn(x, residual=None if residual is None else residual(), relu=True)
    y = bn(x)
    if residual is not None:
        y = y + residual()
    return relu(y)
