"""One small exchange per step, so that every rank takes the same decisions at the same step:
the losses to log (means over the ranks, in rank order: identical everywhere), counts to add up
(the objects each rank trained on), whether any rank
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
    counts: dict = None     # each count summed over the ranks


def agree_step(comm, loss, parts=None, stop=False, counts=None):
    """Every rank's (loss, parts, stop, counts) combined; the same answer on every rank."""
    mine = (float(loss), {k: float(v) for k, v in (parts or {}).items()}, bool(stop),
            {k: int(v) for k, v in (counts or {}).items()})
    everyone = comm.allgather_object(mine)
    n = len(everyone)
    bad = [(r, value) for r, (value, *_) in enumerate(everyone) if not math.isfinite(value)]
    bad_rank, bad_loss = bad[0] if bad else (None, None)
    mean_parts = {k: sum(p[k] for _, p, _, _ in everyone) / n for k in mine[1]}
    mean_loss = sum(value for value, *_ in everyone) / n
    sums = {k: sum(c[k] for *_, c in everyone) for k in mine[3]}
    return StepAgreement(mean_loss, mean_parts, any(s for _, _, s, _ in everyone), bad_rank,
                         bad_loss, sums)
