"""`tinygrad-yolo demo conv` and `demo batchnorm`: the numbers they print by hand are the ones the
engine's forward and backward() compute, and a wrong hand rule would show."""
import re

import numpy as np
import pytest

import tinygrad_yolo as tg
from tinygrad_yolo.cli import main
from tinygrad_yolo.lessons import batchnorm, conv
from tinygrad_yolo.nn import functional as F


def printed(out, name):
    """{(i, j): value} of every line 'name[i,j] = ... = value' the lesson printed."""
    return {(int(i), int(j)): float(v) for i, j, v in
            re.findall(rf"^    {name}\[(\d),(\d)\] = .* = (-?[\d.]+)", out, flags=re.M)}


def conv_gradients(stride, padding):
    x = tg.Tensor(conv.X.copy(), requires_grad=True)
    w = tg.Tensor(conv.W.copy(), requires_grad=True)
    y = F.conv2d(x, w, stride=stride, padding=padding)
    G = np.resize(np.array(conv.G_VALUES, float), y.shape[2] * y.shape[3]).reshape(y.shape)
    (y * tg.Tensor(G)).sum().backward()
    return y.numpy()[0, 0], w.grad.numpy()[0, 0], x.grad.numpy()[0, 0]


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0), (3, 2)])
def test_conv_lesson_prints_the_engines_numbers(stride, padding, capsys):
    assert main(["demo", "conv", "--stride", str(stride), "--padding", str(padding)]) == 0
    out = capsys.readouterr().out
    y, dw, dx = conv_gradients(stride, padding)
    assert printed(out, "dW") == {k: dw[k] for k in np.ndindex(2, 2)}
    assert printed(out, "dx") == {k: dx[k] for k in np.ndindex(3, 3)}
    assert out.count("(the same)") == 4 and "DIFFERENT" not in out
    assert f"Ho = (H + 2 ph - R) // sh + 1 = (3 + {2 * padding} - 2) // {stride} + 1 = " \
           f"{y.shape[0]}" in out
    # the column matrix: one row per tap, one column per output pixel, pixel numbers or 0
    rows = re.findall(r"^    tap \((\d),(\d)\) +([-\d ]+)$", out, flags=re.M)
    assert len(rows) == 4 and all(len(r[2].split()) == y.size for r in rows)


def test_conv_lesson_sums_a_pixel_read_by_every_tap(capsys):
    main(["demo", "conv"])  # stride 1, padding 1: the centre pixel is read by all four taps
    line = re.search(r"^    dx\[1,1\] = (.*) = ", capsys.readouterr().out, flags=re.M).group(1)
    assert re.findall(r"w\d\d\*G\d\d", line) == ["w00*G22", "w01*G21", "w10*G12", "w11*G11"]


def test_a_wrong_hand_rule_shows_as_different(monkeypatch, capsys):
    # forgetting the padding (reading x[oy*sh + r] instead of x[oy*sh - ph + r])
    right = conv.columns
    monkeypatch.setattr(conv, "columns", lambda x, sh, ph, Ho, Wo: right(x, sh, 0, Ho, Wo))
    assert main(["demo", "conv"]) == 1
    assert "DIFFERENT" in capsys.readouterr().out


def test_batchnorm_lesson_paths_add_up_to_backward(capsys):
    assert main(["demo", "batchnorm"]) == 0
    out = capsys.readouterr().out
    x = tg.Tensor(batchnorm.X[:, None].copy(), requires_grad=True)
    gamma = tg.Tensor(np.array([batchnorm.GAMMA]), requires_grad=True)
    beta = tg.Tensor(np.array([batchnorm.BETA]), requires_grad=True)
    y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=0.0)
    (y * tg.Tensor(batchnorm.G[:, None])).sum().backward()
    paths = [np.array(p.split(), float) for p in re.findall(r"^       \S.* = \[([^\]]*)\]$", out,
                                                              flags=re.M)]
    assert len(paths) == 3  # directly, through the mean, through the variance
    np.testing.assert_allclose(sum(paths), x.grad.numpy()[:, 0], atol=1e-12)
    assert f"dL/dβ = Σ g = {beta.grad.item():g}" in out
    assert f"dL/dγ = Σ g·x̂ = {gamma.grad.item():g}" in out
    assert out.count("(the same)") == 7 and "DIFFERENT" not in out
    assert "dL/dx sums to 0:" in out


def test_lessons_are_listed_and_a_wrong_one_is_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "pooling"])
    err = capsys.readouterr().err
    assert "invalid choice: 'pooling'" in err and "conv" in err and "batchnorm" in err


def test_demo_dot_renders_beside_the_file_as_graph_does(tmp_path, monkeypatch, capsys):
    # a stand-in for Graphviz's `dot`: writes what -o names, so the test runs where dot is absent
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\necho rendered > "$2"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    assert main(["demo", "--dot", str(tmp_path / "lesson.dot")]) == 0
    assert (tmp_path / "lesson.png").read_text() == "rendered\n"
    assert "rendered" in capsys.readouterr().out
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert main(["demo", "--dot", str(tmp_path / "again.dot")]) == 0
    assert "Graphviz's `dot` program is not installed" in capsys.readouterr().err


def test_graph_grad_names_tensors_and_says_what_grad_means(tmp_path, capsys):
    path = tmp_path / "block.dot"
    assert main(["graph", "--grad", "--no-render", "--out", str(path)]) == 0
    text = path.read_text()
    for name in ("conv1 output", "bn1 output", "relu output", "downsample output", "input"):
        assert f'label="{name}\\n' in text, name
    assert "the L2 norm of a gradient array" in text and "added element by element" in text
    parts = [float(v) for v in re.findall(r'label="grad part \|g\| = ([\d.]+)"', text)]
    total = float(re.search(r'label="input\\n[^"]*\|grad\| = ([\d.]+)"', text).group(1))
    assert len(parts) == 2 and total < sum(parts)  # the parts add as vectors, not as norms


def test_the_walkthroughs_col_matrix_is_what_the_lesson_prints(capsys):
    from pathlib import Path

    walkthrough = (Path(__file__).resolve().parents[1] / "docs" / "walkthrough.md").read_text()
    shown = re.search(r"```text\n(    \(oy,ox\).*?)```", walkthrough, flags=re.S).group(1)
    main(["demo", "conv", "--stride", "2"])
    assert shown in capsys.readouterr().out
