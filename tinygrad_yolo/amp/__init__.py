"""Mixed precision, PyTorch's names: ``tg.autocast`` (autocast.py: which ops see 16-bit operands)
and ``tg.amp.GradScaler`` (grad_scaler.py: loss scaling for float16's narrow range).

    with tg.autocast("bfloat16"):          # or "float16"
        loss = criterion(model(x), t)      # conv, matmul, linear: 16-bit operands, float32 sums
    scaler.scale(loss).backward()          # float16: scale the loss so small gradients survive
    scaler.unscale_(opt); clip(...); scaler.step(opt); scaler.update()

Parameters, gradients, optimizer state and checkpoints stay float32 throughout.
"""
from .autocast import (AMP_MODES, autocast, autocast_dtype, autocast_mode, round_to_bfloat16,
                       round_to_float16)
from .grad_scaler import GradScaler

__all__ = ["AMP_MODES", "GradScaler", "autocast", "autocast_dtype", "autocast_mode",
           "round_to_bfloat16", "round_to_float16"]
