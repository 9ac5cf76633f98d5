"""tg.amp.GradScaler: PyTorch's semantics and method names -- scale, unscale_ (once, before
clipping), step (skipped on inf/NaN), update (back off, grow every growth_interval clean steps),
state_dict / load_state_dict -- and what it is for: float16 gradients that would underflow."""
import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import optim
from tinygrad_yolo.nn import functional as F


def _param(values):
    return tg.Tensor(np.asarray(values, np.float32), requires_grad=True)


def _with_grad(p, grad):
    p.grad = tg.Tensor(np.asarray(grad, np.float32))
    return p


def test_scale_multiplies_the_loss_and_unscale_divides_the_gradients():
    scaler = tg.amp.GradScaler(init_scale=8.0)
    p = _param([1.0, 2.0])
    loss = (p * p).sum()
    scaled = scaler.scale(loss)
    assert scaled.item() == pytest.approx(8 * loss.item())
    scaled.backward()
    np.testing.assert_allclose(p.grad.numpy(), 8 * 2 * np.array([1.0, 2.0]))
    opt = optim.SGD([p], lr=0.5)
    scaler.unscale_(opt)
    np.testing.assert_allclose(p.grad.numpy(), [2.0, 4.0])  # the true gradient, for clipping
    scaler.step(opt)  # does not unscale a second time
    np.testing.assert_allclose(p.numpy(), [0.0, 0.0])
    scaler.update()
    assert scaler.get_scale() == 8.0


def test_unscale_twice_or_after_step_is_refused_as_in_pytorch():
    scaler = tg.amp.GradScaler()
    opt = optim.SGD([_with_grad(_param([1.0]), [1.0])], lr=0.1)
    scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        scaler.unscale_(opt)
    scaler.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    scaler.unscale_(opt)  # a new iteration


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_step_with_inf_or_nan_is_skipped_and_the_scale_backs_off(bad):
    scaler = tg.amp.GradScaler(init_scale=1024.0, backoff_factor=0.25)
    p = _with_grad(_param([1.0, 1.0]), [bad, 1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    assert scaler.step(opt) is None
    assert scaler.found_inf(opt)
    np.testing.assert_array_equal(p.numpy(), [1.0, 1.0])
    assert not opt.state  # no momentum buffer made from a bad gradient
    scaler.update()
    assert scaler.get_scale() == 256.0


def test_the_scale_grows_after_growth_interval_clean_steps_and_restarts_after_a_skip():
    scaler = tg.amp.GradScaler(init_scale=4.0, growth_factor=3.0, growth_interval=3)
    p = _param([0.0])
    opt = optim.SGD([p], lr=0.0)
    scales = []
    for grad in [1, 1, 1, 1, np.inf, 1, 1, 1]:
        _with_grad(p, [grad])
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    assert scales == [4, 4, 12, 12, 6, 6, 6, 18]


def test_state_dict_round_trips_through_a_checkpoint(tmp_path):
    scaler = tg.amp.GradScaler(init_scale=64.0, growth_interval=5)
    opt = optim.SGD([_with_grad(_param([0.0]), [1.0])], lr=0.0)
    for _ in range(2):
        scaler.step(opt)
        scaler.update()
    tg.save({"scaler": scaler.state_dict()}, tmp_path / "s.npz")
    other = tg.amp.GradScaler()
    other.load_state_dict(tg.load(tmp_path / "s.npz")["scaler"])
    assert other.state_dict() == scaler.state_dict()
    assert other.state_dict()["_growth_tracker"] == 2 and other.get_scale() == 64.0


def test_a_disabled_scaler_passes_everything_through():
    scaler = tg.amp.GradScaler(enabled=False)
    p = _with_grad(_param([1.0]), [np.inf])
    loss = tg.Tensor(np.float32(3.0))
    assert scaler.scale(loss) is loss and scaler.get_scale() == 1.0
    opt = optim.SGD([_with_grad(_param([1.0]), [2.0])], lr=0.5)
    scaler.step(opt)
    scaler.update()
    np.testing.assert_allclose(opt.param_groups[0]["params"][0].numpy(), [0.0])
    assert scaler.state_dict() == {} and p.grad is not None


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ValueError, match="growth_factor > 1"):
        tg.amp.GradScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match="growth_interval must be at least 1"):
        tg.amp.GradScaler(growth_interval=0)


def test_float16_gradients_that_underflow_survive_with_the_scaler():
    # a gradient of 1e-8 is below float16's smallest subnormal (6e-8): under float16 autocast the
    # backward GEMM sees 0; scaled by 2^16 it is representable, and unscale_ brings it back
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    w0 = rng.standard_normal((3, 8)).astype(np.float32)

    def grad(scaler):
        w = _param(w0)
        with tg.autocast("float16"):
            loss = (F.linear(tg.Tensor(x), w) * 1e-8).sum()
        scaler.scale(loss).backward()
        opt = optim.SGD([w], lr=0.0)
        scaler.unscale_(opt)
        return w.grad.numpy()
    exact = 1e-8 * np.ones((4, 3)).T @ x.astype(np.float16).astype(np.float64)
    assert not grad(tg.amp.GradScaler(enabled=False)).any()
    np.testing.assert_allclose(grad(tg.amp.GradScaler()), exact, rtol=2e-3)


def test_unscale_waits_for_the_device_once_whatever_the_number_of_parameters():
    from tinygrad_yolo.testing import fake_cupy
    from tinygrad_yolo.testing.counting import counter
    with fake_cupy.installed():
        params = [tg.Tensor(np.ones(3, np.float32), requires_grad=True, device="cuda")
                  for _ in range(5)]
        for p in params:
            p.grad = tg.Tensor(np.full(3, 4.0, np.float32), device="cuda")
        scaler = tg.amp.GradScaler(init_scale=4.0)
        opt = optim.SGD(params, lr=0.1)
        counter.reset()
        scaler.unscale_(opt)
        assert sum(counter.syncs.values()) == 1
        assert not scaler.found_inf(opt)
        np.testing.assert_array_equal(params[0].grad.numpy(), [1.0, 1.0, 1.0])
