"""Optimizers against closed-form NumPy updates; schedules; resuming from state dicts."""
import math

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo import nn, optim

RNG = np.random.default_rng(0)
P0 = RNG.standard_normal((3, 4))
GRADS = [RNG.standard_normal((3, 4)) for _ in range(5)]


def run(opt_factory, grads=GRADS):
    """Apply the optimizer to one float64 parameter with the given gradient sequence."""
    p = nn.Parameter(P0.copy())
    opt = opt_factory([p])
    for g in grads:
        p.grad = tg.Tensor(g.copy())
        opt.step()
    return p.numpy()


def sgd_reference(lr, momentum=0.0, dampening=0.0, nesterov=False, wd=0.0):
    p, buf = P0.copy(), None
    for g in GRADS:
        d = g + wd * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_reference(lr, b1, b2, eps, wd, decoupled):
    p, m, v = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.01),
])
def test_sgd_matches_closed_form(kw):
    got = run(lambda ps: optim.SGD(ps, **kw))
    ref = sgd_reference(kw["lr"], kw.get("momentum", 0.0), kw.get("dampening", 0.0), kw.get("nesterov", False),
                        kw.get("weight_decay", 0.0))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6), dict(lr=0.01, weight_decay=0.1)])
def test_adam_matches_closed_form(kw):
    got = run(lambda ps: optim.Adam(ps, **kw))
    ref = adam_reference(kw.get("lr", 1e-3), *kw.get("betas", (0.9, 0.999)), kw.get("eps", 1e-8),
                         kw.get("weight_decay", 0.0), decoupled=False)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wd", [1e-2, 0.3])
def test_adamw_matches_closed_form(wd):
    got = run(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=wd))
    np.testing.assert_allclose(got, adam_reference(0.01, 0.9, 0.999, 1e-8, wd, decoupled=True),
                               rtol=1e-12, atol=1e-12)


def test_adam_first_step_moves_each_weight_by_about_lr():
    got = run(lambda ps: optim.Adam(ps, lr=0.01), grads=GRADS[:1])
    np.testing.assert_allclose(np.abs(got - P0), 0.01, rtol=1e-5)  # m_hat / sqrt(v_hat) = sign(g)


def test_params_without_grad_are_skipped_and_float32_stays_float32():
    a = nn.Parameter(np.ones(3, dtype=np.float32))
    b = nn.Parameter(np.ones(3, dtype=np.float32))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = tg.Tensor(np.ones(3, dtype=np.float32))
    opt.step()
    assert a.dtype == np.float32 and (a.numpy() < 1).all()
    np.testing.assert_array_equal(b.numpy(), np.ones(3))
    assert opt.state_dict()["state"].keys() == {0}


def test_step_works_on_a_model_and_does_not_record_a_graph():
    lin = nn.Linear(3, 1)
    opt = optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
    loss = (lin(tg.ones(2, 3)) ** 2).mean()
    loss.backward()
    w = lin.weight.numpy()
    opt.step()
    assert lin.weight.is_leaf and lin.weight._ctx is None
    assert not np.array_equal(lin.weight.numpy(), w)
    opt.zero_grad()
    assert all(p.grad is None for p in lin.parameters())


def test_param_groups_have_their_own_hyperparameters():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.5)
    a.grad, b.grad = tg.Tensor(np.ones(2)), tg.Tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(a.numpy(), -0.1)
    np.testing.assert_allclose(b.numpy(), -1.0)
    assert opt.param_groups[1]["momentum"] == 0.5
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_invalid_hyperparameters():
    p = [nn.Parameter(np.zeros(1))]
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="leaf"):
        optim.SGD([nn.Parameter(np.zeros(1)) * 2.0], lr=0.1)


@pytest.mark.parametrize("factory", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01),
])
def test_resuming_from_state_dict_is_exact(factory, tmp_path):
    """Train 3 steps, checkpoint, train 2 more; a fresh model+optimizer loaded from the
    checkpoint (through tg.save/tg.load) must reach bit-identical weights."""
    def make():
        tg.seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        return model, factory(model.parameters())

    data = [(tg.Tensor(RNG.standard_normal((6, 4)).astype(np.float32)),
             tg.Tensor(RNG.standard_normal((6, 1)).astype(np.float32))) for _ in range(5)]

    def train(model, opt, batches):
        for x, y in batches:
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    model, opt = make()
    train(model, opt, data[:3])
    tg.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "ck.npz")
    train(model, opt, data[3:])

    model2, opt2 = make()
    ck = tg.load(tmp_path / "ck.npz")
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optim"])
    train(model2, opt2, data[3:])
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_load_state_dict_copies_and_checks():
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = tg.Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][0]["lr"] == 0.1
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], np.ones(3))
    opt2 = optim.SGD([nn.Parameter(np.zeros(3))], lr=0.5, momentum=0.9)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    sd["state"][0]["momentum_buffer"][...] = 7  # the optimizer holds its own copy
    assert opt2.state_dict()["state"][0]["momentum_buffer"][0] == 1
    bad = optim.SGD([nn.Parameter(np.zeros(4))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="shape \\(3,\\).*shape \\(4,\\)"):
        bad.load_state_dict(opt.state_dict())
    two = optim.SGD([nn.Parameter(np.zeros(3)), nn.Parameter(np.zeros(3))], lr=0.1)
    with pytest.raises(ValueError, match="1 parameters, this optimizer has 2"):
        two.load_state_dict(opt.state_dict())


# ---- schedules --------------------------------------------------------------------
def lrs(sched, n):
    out = [sched.get_last_lr()[0]]
    for _ in range(n):
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def sgd(lr=0.1):
    return optim.SGD([nn.Parameter(np.zeros(1))], lr=lr)


def test_step_lr():
    np.testing.assert_allclose(lrs(optim.StepLR(sgd(), step_size=3, gamma=0.5), 7),
                               [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_multistep_lr():
    np.testing.assert_allclose(lrs(optim.MultiStepLR(sgd(), milestones=[4, 2], gamma=0.1), 5),
                               [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_lr():
    got = lrs(optim.CosineAnnealingLR(sgd(), T_max=4, eta_min=0.01), 4)
    ref = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[-1] == pytest.approx(0.01)


def test_yolov1_warmup_then_multistep():
    """The paper: raise 1e-3 -> 1e-2 over the first epochs, then 1e-2, 1e-3, 1e-4."""
    opt = sgd(lr=1e-2)
    sched = optim.LinearWarmup(opt, warmup_steps=3, start_factor=0.1,
                               after=optim.MultiStepLR(opt, milestones=[2, 4], gamma=0.1))
    np.testing.assert_allclose(lrs(sched, 8), [1e-3, 4e-3, 7e-3, 1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-4], rtol=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_warmup_without_after_stays_at_base():
    np.testing.assert_allclose(lrs(optim.LinearWarmup(sgd(), 2, start_factor=0.5), 3), [0.05, 0.075, 0.1, 0.1])


def test_schedule_state_dict_resumes():
    def make():
        opt = sgd(lr=1e-2)
        return opt, optim.LinearWarmup(opt, 2, 0.1, after=optim.CosineAnnealingLR(opt, T_max=5))

    opt, sched = make()
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert state["last_epoch"] == 3 and state["after"]["last_epoch"] == 1
    ref = lrs(sched, 4)
    opt2, sched2 = make()
    sched2.load_state_dict(state)
    assert lrs(sched2, 4) == ref
    other = optim.StepLR(sgd(), step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        other.load_state_dict(optim.StepLR(sgd(), step_size=3).state_dict())


def test_schedules_scale_every_group():
    a, b = nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b]}], lr=0.1)
    sched = optim.StepLR(opt, 1, gamma=0.5)
    sched.step()
    assert sched.get_last_lr() == [0.5, 0.05]


@pytest.mark.parametrize("make", [lambda p: tg.optim.SGD(p, lr=0.1, momentum=0.9), lambda p: tg.optim.AdamW(p, lr=0.1)])
def test_a_step_under_a_retained_graph_makes_its_next_backward_raise_as_in_pytorch(make):
    w = tg.nn.Parameter(np.array([2.0, 2.0]))
    x = tg.Tensor(np.array([1.0, 3.0]), requires_grad=True)
    y = (x * w).sum()
    y.backward(retain_graph=True)
    make([w]).step()  # allowed: the optimizer's own in-place write
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()  # the graph saved w's old values
