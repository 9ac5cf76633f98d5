"""`tinygrad-yolo graph`: DOT for a model's forward, rendering through `dot` when present."""
import os
import re
import stat

import pytest

from tinygrad_yolo.cli import main


def check_dot(text):
    """Well formed enough for Graphviz: one digraph, every edge between declared nodes."""
    assert text.startswith("digraph G {") and text.rstrip().endswith("}")
    declared = set(re.findall(r"^\s+([tf]\d+) \[", text, flags=re.M))
    edges = re.findall(r"^\s+([tf]\d+) -> ([tf]\d+);", text, flags=re.M)
    assert edges
    for a, b in edges:
        assert a in declared and b in declared, (a, b)
    return declared, edges


def run_graph(tmp_path, monkeypatch, *args, path=""):
    monkeypatch.setenv("PATH", path)  # no `dot` unless the test puts one there
    out = tmp_path / "g.dot"
    code = main(["graph", "--out", str(out), *args])
    return code, out


def test_basic_block_default_shows_shortcut_projection(tmp_path, monkeypatch, capsys):
    code, out = run_graph(tmp_path, monkeypatch)
    assert code == 0
    text = out.read_text()
    check_dot(text)
    for name in ("conv1.weight", "conv2.weight", "bn1.weight", "downsample.0.weight", "input\\n(2, 16, 8, 8)"):
        assert name in text, name
    assert "Conv2d" in text and "BatchNorm" in text and "Add" in text and "ReLU" in text
    captured = capsys.readouterr()
    assert "ops" in captured.out
    assert "apt-get install graphviz" in captured.err and "brew install graphviz" in captured.err


def test_shortcut_a_has_no_projection_parameters(tmp_path, monkeypatch):
    code, out = run_graph(tmp_path, monkeypatch, "--shortcut", "A")
    text = out.read_text()
    assert code == 0 and "downsample" not in text and "Pad" in text


def test_grad_norms_and_a_whole_resnet(tmp_path, monkeypatch):
    code, out = run_graph(tmp_path, monkeypatch, "--model", "resnet20", "--input-size", "8", "--grad-norms")
    text = out.read_text()
    declared, _ = check_dot(text)
    assert code == 0 and "layer3.2.conv2.weight" in text and "fc.weight" in text
    # the input and every parameter (19 convs, 19 BNs with weight and bias, fc weight and bias) carry |grad|
    assert text.count("|grad| = ") == 1 + 19 + 19 * 2 + 2


def test_renders_with_dot_when_installed(tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dot"  # records its arguments and writes the output file, as dot would
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nfor a; do last=$a; done\n'
                    'echo "<svg/>" > "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    code, out = run_graph(tmp_path, monkeypatch, "--format", "png", path=str(bindir) + os.pathsep + "/bin")
    assert code == 0
    assert (bindir / "args").read_text().split() == ["-Tpng", str(out), "-o", str(tmp_path / "g.png")]
    assert (tmp_path / "g.png").exists() and "rendered" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--shortcut", "A", "--in-channels", "32", "--out-channels", "16"], "shortcut 'A' can only add channels"),
    (["--input-size", "0"], "--input-size must be at least 1"),
    (["--stride", "0"], "must be at least 1"),
])
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, capsys, args, message):
    code, out = run_graph(tmp_path, monkeypatch, *args)
    assert code == 2 and message in capsys.readouterr().err and not out.exists()


def test_missing_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "")
    assert main(["graph", "--out", str(tmp_path / "nope" / "g.dot")]) == 2
    assert "does not exist" in capsys.readouterr().err
