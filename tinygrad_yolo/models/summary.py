"""summary(model, input_shape): a torchsummary-style table of layers, output shapes
and parameter counts, from one traced forward pass (no_grad, eval mode).

Every module except the root and pure containers (Sequential, ModuleList) gets a
forward hook that records its output shape; each row counts only the module's own
parameters, so the rows add up to the total.
"""
from collections import namedtuple

import numpy as np

from .. import nn
from ..function import no_grad
from ..tensor import Tensor

SummaryRow = namedtuple("SummaryRow", ["name", "type", "output_shape", "params"])


def summary(model, input_shape, device="cpu", dtype=np.float32, print_fn=print):
    """Run ``model`` on zeros of ``input_shape`` ((C, H, W) gets a batch of 1 prepended)
    and print one row per layer; returns the list of SummaryRow."""
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    rows, handles = [], []

    def hook_for(name, module):
        def hook(m, inputs, output):
            out_shape = tuple(output.shape) if isinstance(output, Tensor) else \
                tuple(tuple(o.shape) for o in output)
            own = sum(p.size for p in m.parameters(recurse=False))
            rows.append(SummaryRow(name, type(m).__name__, out_shape, own))
        return hook

    for name, m in model.named_modules():
        if name and not isinstance(m, (nn.Sequential, nn.ModuleList)):
            handles.append(m.register_forward_hook(hook_for(name, m)))
    was_training = model.training
    model.eval()  # don't let the trace move BatchNorm running statistics
    try:
        with no_grad():
            out = model(Tensor(np.zeros(shape, dtype=dtype), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    total = sum(p.size for p in model.parameters())
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    if print_fn is not None:
        w_name = max([len(f"{r.name} ({r.type})") for r in rows] + [len("Layer (type)")]) + 2
        w_shape = max([len(str(list(r.output_shape))) for r in rows] + [len("Output Shape")]) + 2
        rule = "-" * (w_name + w_shape + 15)
        print_fn(rule)
        print_fn(f"{'Layer (type)':<{w_name}}{'Output Shape':>{w_shape}}{'Param #':>15}")
        print_fn("=" * len(rule))
        for r in rows:
            name = f"{r.name} ({r.type})"
            print_fn(f"{name:<{w_name}}{str(list(r.output_shape)):>{w_shape}}{r.params:>15,}")
        print_fn("=" * len(rule))
        print_fn(f"Input shape: {list(shape)}   Output shape: {list(out.shape)}")
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {total - trainable:,}")
        megabytes = sum(p.data.nbytes for p in model.parameters()) / 2**20
        print_fn(f"Parameter size (MB): {megabytes:.2f}")
        print_fn(rule)
    return rows
