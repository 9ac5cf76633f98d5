"""Gradient-check cases for every differentiable op (needs hypothesis: the `test` extra).

Shared by the test suite and `tinygrad-yolo gradcheck`, so an op added here is
checked by both. Functions deliberately without a case are listed in EXEMPT.
"""
from .registry import (CASES, FLOAT32_TOLERANCE, LAYOUT_TOLERANCE, Case, Params, build_example, case, check_example, check_float32,
                       check_layouts, covered_functions, on_device, repro_line, run_case, same_layout)
from .strategies import LAYOUTS, STRIDED, is_strided, with_layout
from . import core_cases  # noqa: F401  (registers the cases)
from . import conv_cases  # noqa: F401
from . import distributed_cases  # noqa: F401

# Function classes that no numeric case covers, and why.
EXEMPT = {
    "tinygrad_yolo.ops.copy.ToDevice": "moves data between devices: tests/test_gpu.py checks it on a GPU",
    "tinygrad_yolo.ops.fused_norm.FusedBatchNorm": (
        "CUDA only (nn.functional.batch_norm picks it for CUDA arrays; the batch_norm cases call BatchNorm "
        "itself): tests/test_fused_kernels.py checks it on the CPU through the host-compiled kernels against "
        "BatchNorm composed with Add and ReLU (itself gradient-checked) and by a numeric directional "
        "derivative in float64; tests/test_gpu_fused.py repeats the comparison on a GPU"),
}
