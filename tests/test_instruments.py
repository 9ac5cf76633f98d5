"""Study instruments: profiler, TINYGRAD_YOLO_PROFILE=1, anomaly mode, DOT graphs, gradient flow,
hooks."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_yolo as tg


def leaf(a):
    return tg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def test_profile_counts_forward_and_backward_per_op():
    x = leaf([1.0, 2.0, 3.0])
    with tg.profile() as prof:
        y = (x.exp() * x).sum()
        y.backward()
    rows = {r[0]: r for r in prof.rows()}
    assert set(rows) == {"Exp", "Mul", "Sum"}
    assert all(r[1] == 1 and r[3] == 1 for r in rows.values())
    assert "Exp" in prof.table() and "share" in prof.table()
    from tinygrad_yolo.function import Function
    assert not Function._observers, "the profiler must uninstall itself"


def _stderr_of_a_step(**env):
    code = ("import tinygrad_yolo as tg; x = tg.Tensor([1.0, 2.0], requires_grad=True); "
            "(x * x).sum().backward()")
    env = dict({k: v for k, v in os.environ.items() if k not in ("DEBUG", "TINYGRAD_YOLO_PROFILE")},
               **env)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stderr


def test_profile_env_prints_ops_and_summary():
    err = _stderr_of_a_step(TINYGRAD_YOLO_PROFILE="1")
    assert "fwd Mul" in err and "bwd Sum" in err and "share" in err


def test_debug_env_only_points_at_the_new_name():
    err = _stderr_of_a_step(DEBUG="1")
    assert "TINYGRAD_YOLO_PROFILE=1" in err and "fwd Mul" not in err
    assert _stderr_of_a_step() == ""  # importing the package prints nothing


def test_anomaly_names_forward_op_and_line():
    x = leaf([1.0, 0.0])
    with pytest.raises(tg.AnomalyError, match=r"forward of Log \(created at .*test_instruments.py"):
        with tg.detect_anomaly(), np.errstate(divide="ignore"):
            x.log()


def test_anomaly_names_backward_op():
    x = leaf([4.0, 0.0])
    with pytest.raises(tg.AnomalyError, match="backward of Sqrt"):
        with tg.detect_anomaly(), np.errstate(divide="ignore"):
            x.sqrt().sum().backward()


def test_anomaly_quiet_when_finite():
    x = leaf([1.0, 2.0])
    with tg.detect_anomaly():
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_to_dot_shows_ops_tensors_and_grad_norms():
    x = leaf([1.0, 2.0])
    y = (x * x + x).sum()
    y.backward(retain_graph=True)
    dot = tg.viz.to_dot(y, {"x": x}, grad_norms=True)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for token in ("Mul", "Add", "Sum", "x\\n(2,) float64", "|grad| = "):
        assert token in dot
    assert dot.count("-> f") == 5  # op inputs: x twice into Mul, Mul and x into Add, Add into Sum
    assert dot.count("-> t") == 3  # op outputs: one per op


def test_gradient_flow_rows_and_plot(tmp_path):
    class Tiny:
        def __init__(self):
            self.w = leaf(np.ones((2, 2)))
            self.b = leaf(np.zeros(2))

        def named_parameters(self):
            return [("w", self.w), ("b", self.b)]

    m = Tiny()
    ((tg.Tensor(np.ones((3, 2))) @ m.w + m.b) ** 2).sum().backward()
    rows = tg.viz.gradient_flow(m)
    assert [r[0] for r in rows] == ["w", "b"] and all(r[1] > 0 for r in rows)
    assert "parameter" in tg.viz.format_gradient_flow(rows)
    path = tg.viz.plot_gradient_flow(rows, tmp_path / "flow.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_profiler_times_cuda_ops_with_events_and_waits_once():
    """On CUDA the profiler records an event pair per op (testing/fake_cupy's events count device
    calls: 1 µs each) and waits once, when the table is read; the host clock and its two
    synchronisations per op remain for the CPU."""
    import numpy as np
    import pytest

    import tinygrad_yolo as tg
    from tinygrad_yolo import nn
    from tinygrad_yolo.testing import fake_cupy
    with fake_cupy.installed():
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        model.to("cuda")
        x = tg.Tensor(np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32),
                      device="cuda")
        fake_cupy.counter.reset()
        with tg.profile() as prof:
            loss = model(x).sum()
            loss.backward()
        assert sum(fake_cupy.counter.syncs.values()) == 0  # nothing waited inside the step
        calls = fake_cupy.counter.total_calls()
        rows = {r[0]: r for r in prof.rows()}
        assert dict(fake_cupy.counter.syncs) == {"event_synchronize": 1}
        assert rows["Conv2d"][1] == 1 and rows["Conv2d"][3] == 1 and rows["FusedBatchNorm"][1] == 1
        # every op's device calls fall between its events: the op times add up to at most the step
        total_ms = sum(r[2] + r[4] for r in rows.values())
        assert 0 < total_ms <= calls * 1e-3 + 1e-9
        assert rows["FusedBatchNorm"][2] == pytest.approx(3e-3)  # its forward: three kernels
    with tg.profile() as prof:  # the CPU: host clock
        tg.Tensor(np.ones(3), requires_grad=True).sum().backward()
    rows = prof.rows()
    assert rows and all(r[2] >= 0 and r[4] >= 0 for r in rows)
