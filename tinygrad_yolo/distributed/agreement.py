"""One small exchange per step, so that every rank takes the same decisions at the same step:
the losses to log (means over the ranks, in rank order: identical everywhere), whether any rank
was asked to stop (a signal reaches one process, or all at slightly different steps), and
whether any rank's loss is not finite (then every rank stops with the same error).
"""
import math
from dataclasses import dataclass


@dataclass
class StepAgreement:
    loss: float             # the mean of the ranks' losses
    parts: dict             # the mean of each loss part
    stop: bool              # some rank was asked to stop
    bad_rank: int = None    # the first rank whose loss is not finite, or None
    bad_loss: float = None  # its loss


def agree_step(comm, loss, parts=None, stop=False):
    """Every rank's (loss, parts, stop) combined; the same answer on every rank."""
    mine = (float(loss), {k: float(v) for k, v in (parts or {}).items()}, bool(stop))
    everyone = comm.allgather_object(mine)
    n = len(everyone)
    bad = [(r, value) for r, (value, _, _) in enumerate(everyone) if not math.isfinite(value)]
    bad_rank, bad_loss = bad[0] if bad else (None, None)
    mean_parts = {k: sum(p[k] for _, p, _ in everyone) / n for k in mine[1]}
    mean_loss = sum(value for value, _, _ in everyone) / n
    return StepAgreement(mean_loss, mean_parts, any(s for _, _, s in everyone), bad_rank, bad_loss)
