"""``bn_act``: a BatchNorm module, an optional residual and a ReLU as the models write them,
fused into one op on CUDA (cuda/norm.py) and composed exactly as before on the CPU (the
same ops in the same order: the CPU graph and its numbers don't change)."""


def bn_act(bn, x, relu, residual=None):
    """relu(bn(x) [+ residual()]). ``residual``: a function computing the shortcut (called after bn
    on the CPU, as the models always did, and before it on CUDA, where the add is fused)."""
    if x.device == "cuda" and type(relu).__name__ == "ReLU" and getattr(bn, "fusable", False):
        return bn(x, residual=None if residual is None else residual(), relu=True)
    y = bn(x)
    if residual is not None:
        y = y + residual()
    return relu(y)
