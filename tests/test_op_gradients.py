"""Every differentiable op, gradient-checked in float64 over hypothesis-drawn shapes.

The cases come from tinygrad_yolo.checks (the registry `tinygrad-yolo gradcheck`
walks too); the last test fails if any Function in the package has no case.
"""
import importlib
import pkgutil

import pytest
from hypothesis import given, strategies as st

import tinygrad_yolo
from tinygrad_yolo.checks import CASES, EXEMPT, build_example, check_example, covered_functions, repro_line
from tinygrad_yolo.function import Function


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_gradcheck(name, data):
    fn, arrays, params = build_example(name, data.draw)
    result = check_example(name, fn, arrays)
    assert result.ok, f"{result.message()}\nreplay: {repro_line(name, params)}"


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
