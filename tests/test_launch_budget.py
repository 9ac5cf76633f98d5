"""The GPU step's budget, pinned on CI without a GPU: one training step of the YOLO-ResNet18
(tinygrad_yolo/tools/launch_count.py, CuPy replaced by tools/fake_cupy) may not ask the device for
more calls than this, nor wait for it. Measured when this was written (128², batch 2, SGD):
566 calls = 185 element-wise + 34 reductions + 68 GEMMs + 258 raw kernels + 21 copies, no host
sync, no hidden copy (1,748 calls, 5 syncs and 33 hidden copies before issue 19's work). A change
that adds calls per step shows here; raise a budget only with a reason in the commit."""
import pytest

from tinygrad_yolo.tools import launch_count

BUDGET = {"calls": 600, "elementwise": 200, "reduction": 40, "gemm": 68, "raw": 270, "copy": 25}


@pytest.fixture(scope="module", params=["sgd", "adamw"])
def measured(request):
    return launch_count.measure(img=128, batch=2, optimizer=request.param)


def test_a_training_step_stays_within_its_device_call_budget(measured):
    step = measured["step"]
    assert step["calls"] <= BUDGET["calls"], launch_count.format_report(measured)
    for category, most in BUDGET.items():
        if category != "calls":
            assert step["by_category"].get(category, 0) <= most, (category, launch_count.format_report(measured))


def test_a_training_step_never_waits_for_the_device(measured):
    step = measured["step"]
    assert step["syncs"] == 0, step["syncs_by_kind"]
    assert measured["read_loss"] >= 1  # reading the loss afterwards is where the wait goes


def test_a_training_step_has_no_hidden_copies_or_pointer_arrays(measured):
    names = measured["names"]
    assert measured["step"]["hidden_copy_bytes"] == 0
    assert "copy:matmul_hidden_copy" not in names and "elementwise:matmul_pointer_arrays" not in names
    assert names.get("gemm:sgemmStridedBatched") == measured["step"]["by_category"]["gemm"]
