"""Gradient-check cases for every differentiable op (needs hypothesis: the `test` extra).

Shared by the test suite and `tinygrad-yolo gradcheck`, so an op added here is
checked by both. Functions deliberately without a case are listed in EXEMPT.
"""
from .registry import (CASES, FLOAT32_TOLERANCE, LAYOUT_TOLERANCE, Case, Params, build_example,
                       case, check_example, check_float32, check_layouts, covered_functions,
                       on_device, repro_line, run_case, same_layout)
from .strategies import LAYOUTS, STRIDED, is_strided, with_layout
from . import core_cases  # noqa: F401  (registers the cases)
from . import conv_cases  # noqa: F401
from . import distributed_cases  # noqa: F401

# Function classes that no numeric case covers, and why.
EXEMPT = {
    "tinygrad_yolo.ops.copy.ToDevice":
        "moves data between devices: tests/test_gpu.py checks it on a GPU",
    "tinygrad_yolo.amp.autocast.RoundOperand":
        "autocast's rounding, the identity on float64: tests/test_amp_autocast.py checks it",
    "tinygrad_yolo.amp.autocast.RoundGradient":
        "autocast's rounding, the identity on float64: tests/test_amp_autocast.py checks it",
}
