"""Failing together: a step that may fail (reading the data, claiming the run folder) is taken by
every rank before the next collective, so that one rank's error ends every rank at the same
point instead of leaving the others waiting in their next exchange forever.

The error is reported once: the first failing rank prints it (``reported_elsewhere`` tells the
command-line's error handler whether this rank stays quiet), and every rank leaves the job
with it.
"""


class FailedOnAnotherRank(RuntimeError):
    """What the ranks that did not fail raise: another rank failed and reports why."""


def agreed(error, reporter, comm):
    """Mark ``error`` as raised on every rank alike, printed by rank ``reporter`` alone."""
    error.reported_elsewhere = comm.rank != reporter
    error.raised_on_every_rank = True
    return error


def together(comm, fn):
    """``fn()`` on every rank; when it raised on any rank, every rank raises: the failing ranks
    their own error, the others FailedOnAnotherRank. Returns fn's result otherwise."""
    try:
        result, error = fn(), None
    except Exception as e:  # noqa: BLE001 -- every error must reach the other ranks
        result, error = None, e
    if comm.size == 1:
        if error is not None:
            raise error
        return result
    failed = [r for r, bad in enumerate(comm.allgather_object(error is not None)) if bad]
    if not failed:
        return result
    if error is None:
        error = FailedOnAnotherRank(f"rank {failed[0]} failed")
    raise agreed(error, failed[0], comm)


def from_main(comm, fn):
    """``fn()`` on rank 0 alone (claiming the run folder); its result on rank 0, and on the
    others ``None``, after every rank learned whether it failed (then all raise, as together)."""
    return together(comm, fn if comm.is_main else lambda: None)


def leave_together(error, comm, code):
    """End this rank with exit status ``code`` when every rank raised ``error``: once all have
    met (so the rank that reports it has printed), each leaves on its own, without the abort
    that one rank's failing exit would start (a line of noise per rank). Otherwise nothing:
    the caller returns ``code``, and under ``-m mpi4py`` that exit ends every rank."""
    if getattr(error, "raised_on_every_rank", False) and comm.size > 1:
        comm.barrier()
        comm.leave(code)


def share_from_main(comm, value):
    """Rank 0's ``value`` (small, picklable) on every rank."""
    return comm.broadcast_object(value if comm.is_main else None)
