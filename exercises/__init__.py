"""Build-it-yourself: rebuild the engine step by step, each step checked by the project's own
gradient checks and tests. See exercises/README.md."""
import importlib
import os

# Whose files the checks load: "mine" (exercises/stepN_*.py, the default) or "solutions"
# (exercises/solutions/). The EXERCISES environment variable (or `pytest --solutions`) wins;
# tests/test_exercises.py sets this to "solutions" for CI.
SOURCE = "mine"


class ExerciseNotDone(BaseException):
    """Raised by a stub that is still waiting for your code: the message says what to write.

    A BaseException, not an Exception: hypothesis then stops at the first example instead of
    shrinking towards a smallest one (which says nothing about a function not yet written),
    and no ``except Exception`` in the code under test swallows it."""


def load(step):
    """The module of ``step`` (e.g. "step3_broadcast") that the checks run against."""
    source = os.environ.get("EXERCISES", SOURCE)
    if source not in ("mine", "solutions"):
        raise ValueError(f"EXERCISES must be 'mine' or 'solutions', got {source!r}")
    package = "exercises.solutions" if source == "solutions" else "exercises"
    return importlib.import_module(f"{package}.{step}")


def replay(case, swaps, source="mine", **params):
    """Re-run one example of the project's gradient-check case ``case`` with YOUR code swapped
    into the engine, as the failing check ran it, and print the result. ``swaps``: one
    (engine module, attribute, step, your name) per piece replaced; ``params``: the values
    hypothesis drew. A failing check prints the line that calls this for you."""
    import contextlib
    from unittest import mock

    from tinygrad_yolo.checks import run_case
    previous = os.environ.get("EXERCISES")
    os.environ["EXERCISES"] = source
    try:
        with contextlib.ExitStack() as stack:
            for module, attribute, step, name in swaps:
                mine = getattr(load(step), name)
                stack.enter_context(mock.patch.object(importlib.import_module(module), attribute,
                                                      mine))
            result = run_case(case, **params)[0]
    finally:
        if previous is None:
            del os.environ["EXERCISES"]
        else:
            os.environ["EXERCISES"] = previous
    print(result)
    return result
