"""The GPU step's budget, pinned on CI without a GPU: one training step of the YOLO-ResNet18
(tinygrad_yolo/testing/launch_count.py, CuPy replaced by testing/fake_cupy) may not ask the device
for more calls than this, nor wait for it. At 128², batch 2, SGD it makes 577 calls = 185
element-wise + 11 reductions + 74 GEMMs + 258 raw kernels + 40 copies + 9 host-to-device copies
of Python scalars, no host sync, no hidden copy (docs/performance.md has how that came down).
dW adds into one (K, C·R·S) buffer: a GEMM per image on large maps, one GEMM over a copy of gy
with the images side by side on small ones. A change that adds calls per step shows here; raise
a budget only with a reason in the commit."""
import pytest

from tinygrad_yolo.testing import launch_count

BUDGET = {"calls": 600, "elementwise": 200, "reduction": 40, "gemm": 74, "raw": 270, "copy": 45,
          "transfer": 10}


@pytest.fixture(scope="module", params=["sgd", "adamw"])
def measured(request):
    return launch_count.measure(img=128, batch=2, optimizer=request.param)


def test_a_training_step_stays_within_its_device_call_budget(measured):
    step = measured["step"]
    assert step["calls"] <= BUDGET["calls"], launch_count.format_report(measured)
    for category, most in BUDGET.items():
        if category != "calls":
            assert step["by_category"].get(category, 0) <= most, \
                (category, launch_count.format_report(measured))


def test_a_training_step_never_waits_for_the_device(measured):
    step = measured["step"]
    assert step["syncs"] == 0, step["syncs_by_kind"]
    assert measured["read_loss"] >= 1  # reading the loss afterwards is where the wait goes


def test_a_training_step_has_no_hidden_copies_or_pointer_arrays(measured):
    names = measured["names"]
    assert measured["step"]["hidden_copy_bytes"] == 0
    assert "copy:matmul_hidden_copy" not in names
    assert "elementwise:matmul_pointer_arrays" not in names
    assert names.get("gemm:sgemmStridedBatched") == measured["step"]["by_category"]["gemm"]


def test_the_cuda_path_of_the_whole_step_computes_what_the_cpu_computes():
    """The counted path is the real one: the YOLO-ResNet18 in float64 through the CUDA code (fused
    batch norm with the residual add and ReLU, cuBLAS GEMMs on chunked columns, through
    fake_cupy's emulations) gives the CPU's loss, gradients and running statistics."""
    import numpy as np

    import tinygrad_yolo as tg
    from tinygrad_yolo import backend
    from tinygrad_yolo.detection import YOLOv1Loss
    from tinygrad_yolo.models import YOLOv1
    from tinygrad_yolo.testing import fake_cupy
    from tinygrad_yolo.utils import seed
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 128, 128))
    t = launch_count._targets(rng, 2, 2, 20).astype(np.float64)
    results = {}
    for device in ("cpu", "cuda"):
        seed(0)
        with (fake_cupy.installed() if device == "cuda" else _nothing()):
            model = YOLOv1("resnet18", S=2, B=2, C=20, img_size=128, head="conv").double()
            model.to(device)
            loss, _ = YOLOv1Loss(S=2, B=2, C=20)(model(tg.Tensor(x, device=device)),
                                                 tg.Tensor(t, device=device))
            loss.backward()
            grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
            state = {n: backend.to_numpy(b) for n, b in model.state_dict().items()}
            results[device] = (loss.item(), grads, state)
    (loss_c, grads_c, state_c), (loss_g, grads_g, state_g) = results["cpu"], results["cuda"]
    assert loss_g == pytest.approx(loss_c, rel=1e-12)
    for name, g in grads_c.items():  # float64: the two paths differ only in summation order
        np.testing.assert_allclose(grads_g[name], g, rtol=1e-9, atol=1e-9 * np.abs(g).max(),
                                   err_msg=name)
    for name, v in state_c.items():
        np.testing.assert_allclose(state_g[name], v, rtol=1e-12, atol=1e-12, err_msg=name)


def _nothing():
    import contextlib
    return contextlib.nullcontext()
