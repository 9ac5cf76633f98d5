"""Hypothesis strategies for the tests. They live in the package
(tinygrad_yolo.checks.strategies) because `tinygrad-yolo gradcheck` uses them too."""
from tinygrad_yolo.checks.strategies import broadcastable_shapes, make_array, seeds, shapes  # noqa: F401 (re-exported)
