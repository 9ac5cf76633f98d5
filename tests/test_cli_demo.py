"""`tinygrad-yolo demo`: the chain rule through a two-layer network, step by step, each step
checked against what backward() computed at that op."""
import re

from tinygrad_yolo.cli import main


def test_demo_is_a_lesson_that_checks_itself(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for step in ("dL/dy ", "dL/dW2", "dL/dh ", "dL/dz ", "dL/dW1"):
        assert f"    {step} = " in out
    assert out.count("(the same)") == 5 and "DIFFERENT" not in out
    assert "stops it where z <= 0" in out
    # the trace: every op of the graph, in the order backward() visited it
    visits = re.findall(r"^    \d+\. (\w+)", out, flags=re.M)
    assert visits[:4] == ["Sum", "Pow", "Sub", "MatMul"] and sorted(visits) == sorted(
        ["Sum", "Pow", "Sub", "MatMul", "ReLU", "MatMul", "Transpose", "Transpose"])
    assert "tg.gradcheck (float64 central differences): passed" in out


def test_demo_numbers_change_with_the_seed_and_the_relu_stops_one_unit(capsys):
    main(["demo", "--seed", "3"])
    out = capsys.readouterr().out
    h = re.search(r"h  = relu\(z\)   = \[\[([^\]]*)\]\]", out).group(1).split()
    assert len(h) == 3 and h.count("0") == 1  # one unit off: its gradient is stopped
    main(["demo"])
    assert capsys.readouterr().out != out


def test_demo_writes_the_graph_with_values(tmp_path, capsys):
    path = tmp_path / "lesson.dot"
    assert main(["demo", "--dot", str(path)]) == 0
    dot = path.read_text()
    for name in ("W1\\n(3, 2) float64\\ndata", "W2.T", "(y - t)^2",
                 "constant (no gradient)\\n(1, 2) float64\\ndata", "Pow\\nexponent 2"):
        assert name in dot, name
    assert f"wrote {path}" in capsys.readouterr().out


def test_demo_reports_an_unwritable_dot_file(tmp_path, capsys):
    assert main(["demo", "--dot", str(tmp_path / "missing" / "g.dot")]) == 2
    assert "cannot write" in capsys.readouterr().err
