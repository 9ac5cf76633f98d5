"""Gradient-check cases for every differentiable op (needs hypothesis: the `test` extra).

Shared by the test suite and `tinygrad-yolo gradcheck`, so an op added here is
checked by both. Functions deliberately without a case are listed in EXEMPT.
"""
from .registry import CASES, Case, Params, build_example, case, check_example, covered_functions, repro_line, run_case
from . import core_cases  # noqa: F401  (registers the cases)
from . import conv_cases  # noqa: F401

# Function classes that no numeric case covers, and why.
EXEMPT = {
    "tinygrad_yolo.ops.elementwise.ToDevice": "moves data between devices: tests/test_gpu.py checks it on a GPU",
}
