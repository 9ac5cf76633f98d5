"""Every differentiable op, gradient-checked in float64 over hypothesis-drawn shapes and
input layouts, compared on strided against contiguous inputs, and in float32 against float64.

The cases come from tinygrad_yolo.checks (the registry `tinygrad-yolo gradcheck`
walks too); test_every_op_has_a_gradient_check fails if any Function in the package has no case.
"""
import importlib
import pkgutil

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import tinygrad_yolo
from tinygrad_yolo.checks import (CASES, EXEMPT, LAYOUT_TOLERANCE, STRIDED, build_example,
                                  check_example, check_float32, check_layouts, covered_functions,
                                  is_strided, repro_line)
from tinygrad_yolo.function import Function

# a quarter of the profile's examples for each (op, layout) pair: 4 in `ci`, 75 in `thorough`
STRIDED_EXAMPLES = max(4, settings().max_examples // 4)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_gradcheck(name, data):
    fn, arrays, params = build_example(name, data.draw)
    result = check_example(name, fn, arrays)
    assert result.ok, f"{result.message()}\nreplay: {repro_line(name, params)}"


@pytest.mark.parametrize("layout", STRIDED)
@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=STRIDED_EXAMPLES)
@given(data=st.data())
def test_strided_inputs(name, layout, data):
    """Every op, every non-contiguous layout: only examples where some input really is strided count
    (hypothesis fails the test if it finds none), the values and gradients must be those of the
    contiguous copies, and where the case's gradient check takes this layout it must pass on the
    strided inputs themselves."""
    fn, arrays, params = build_example(name, data.draw, layouts=(layout,))
    assume(any(is_strided(a) for a in arrays))
    replay = f"replay: {repro_line(name, params)}"
    assert check_layouts(fn, arrays) <= LAYOUT_TOLERANCE, (
        f"strided and contiguous inputs differ\n{replay}")
    if layout in CASES[name].layouts:
        result = check_example(name, fn, arrays)
        assert result.ok, f"{result.message()}\n{replay}"


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_float32_matches_float64(name, data):
    fn, arrays, params = build_example(name, data.draw)
    error = check_float32(fn, arrays)
    assert error <= CASES[name].float32, (f"float32 is {error:.3g} away from float64 (tolerance "
                                          f"{CASES[name].float32:.3g})\nreplay: "
                                          f"{repro_line(name, params)}")


def test_every_case_checks_gradients_on_strided_inputs():
    # permuted, reversed and step-2 inputs for every op; broadcast views for all but the ops with
    # a kink at ties (their values and gradients still meet the contiguous ones in
    # test_strided_inputs)
    without_broadcast = set()
    for name, case in CASES.items():
        assert {"contiguous", "permuted", "reversed", "step2"} <= set(case.layouts), name
        if "broadcast" not in case.layouts:
            without_broadcast.add(name)
    assert without_broadcast == {"max", "max_pool2d"}


def _import_all_modules():
    for mod in pkgutil.walk_packages(tinygrad_yolo.__path__, "tinygrad_yolo."):
        if mod.name.startswith("tinygrad_yolo.cli"):
            continue
        importlib.import_module(mod.name)


def test_every_op_has_a_gradient_check():
    _import_all_modules()
    covered = {f"{c.__module__}.{c.__qualname__}" for c in covered_functions()}
    ops = {name for name in Function.registry if name.startswith("tinygrad_yolo.")}
    missing = sorted(ops - covered - set(EXEMPT))
    assert not missing, f"these ops have no gradient-check case in tinygrad_yolo.checks: {missing}"
    assert set(EXEMPT) <= ops, f"EXEMPT names ops that no longer exist: {sorted(set(EXEMPT) - ops)}"


@pytest.mark.parametrize("layout", STRIDED)
def test_layouts_survive_the_move_to_a_device(layout):
    # what on_device does for CUDA (copy the buffer, view it with the same strides), run with NumPy
    from tinygrad_yolo.checks import same_layout, with_layout
    a = with_layout(np.random.default_rng(0).standard_normal((2, 3, 4)), layout)
    b = same_layout(a, np)
    assert b.strides == a.strides and not np.shares_memory(a, b)
    np.testing.assert_array_equal(b, a)
