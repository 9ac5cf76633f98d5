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
    for name in ("conv1.weight", "conv2.weight", "bn1.weight", "downsample.0.weight",
                 "input\\n(2, 16, 8, 8)"):
        assert name in text, name
    assert "Conv2d" in text and "BatchNorm" in text and "Add" in text and "ReLU" in text
    captured = capsys.readouterr()
    assert "ops" in captured.out
    assert "apt-get install graphviz" in captured.err and "brew install graphviz" in captured.err


def test_shortcut_a_has_no_projection_parameters(tmp_path, monkeypatch):
    code, out = run_graph(tmp_path, monkeypatch, "--shortcut", "A")
    text = out.read_text()
    assert code == 0 and "Pad" in text
    assert "downsample.0.weight" not in text and "downsample.1.weight" not in text  # no conv, BN
    assert "downsample output" in text  # the zero-padded x, named after its module


def boxes(text):
    """{node id: label} of the tensor boxes."""
    return dict(re.findall(r'^\s+(\w+) \[shape=box, [^\]]*label="([^"]*)"\];', text, flags=re.M))


def test_grad_on_every_tensor_of_a_whole_resnet(tmp_path, monkeypatch):
    code, out = run_graph(tmp_path, monkeypatch, "--model", "resnet20", "--input-size", "8",
                          "--grad")
    text = out.read_text()
    check_dot(text)
    assert code == 0 and "layer3.2.conv2.weight" in text and "fc.weight" in text
    labels = boxes(text)
    with_grad = [k for k, v in labels.items() if "|grad| = " in v]
    constants = [k for k, v in labels.items() if v.startswith("constant")]
    # every tensor a gradient reaches carries one: the input, the 19 convs, 19 BNs' weight and bias,
    # fc's weight and bias, and every intermediate result
    assert len(with_grad) == len(labels) - len(constants) > 1 + 19 + 19 * 2 + 2
    # --grad-norms, the other spelling scripts use, does the same
    code, out2 = run_graph(tmp_path, monkeypatch, "--model", "resnet20", "--input-size", "8",
                           "--grad-norms")
    graded = [v for v in boxes(out2.read_text()).values() if "|grad| = " in v]
    assert code == 0 and len(graded) == len(with_grad)


def test_grad_shows_the_gradients_meeting_at_the_add(tmp_path, monkeypatch):
    """A BasicBlock's Add gets the branch's and the shortcut's results and passes its output's
    gradient to both unchanged; the block's input feeds conv1 and the shortcut, so its two
    edges carry the two parts of its gradient."""
    code, out = run_graph(tmp_path, monkeypatch, "--grad")
    text = out.read_text()
    check_dot(text)
    labels = boxes(text)
    add = re.search(r'^\s+(f\d+) \[label="Add"', text, flags=re.M).group(1)
    ins = re.findall(rf"^\s+(\w+) -> {add};", text, flags=re.M)
    outs = re.findall(rf"^\s+{add} -> (\w+);", text, flags=re.M)
    assert len(ins) == 2 and len(outs) == 1
    norm = lambda key: re.search(r"\|grad\| = (\S+)", labels[key]).group(1)  # noqa: E731
    assert norm(ins[0]) == norm(ins[1]) == norm(outs[0])
    x = next(k for k, v in labels.items() if v.startswith("input"))
    parts = re.findall(rf'^\s+{x} -> f\d+ \[label="grad part \|g\| = [^"]+"\];', text, flags=re.M)
    assert len(parts) == 2
    assert "kernel 3x3, stride 2, padding 1" in text and "kernel 1x1, stride 2, padding 0" in text


def test_small_tensors_show_values_and_signed_gradients(tmp_path, monkeypatch):
    code, out = run_graph(tmp_path, monkeypatch, "--grad", "--in-channels", "1",
                          "--out-channels", "1", "--input-size", "2", "--stride", "1")
    labels = boxes(out.read_text())
    assert code == 0
    x = next(v for v in labels.values() if v.startswith("input"))
    data = [float(a) for a in re.search(r"data \[([^\]]*)\]", x).group(1).split()]
    grad = [float(a) for a in re.search(r"grad \[([^\]]*)\]", x).group(1).split()]
    assert len(data) == len(grad) == 8 and min(grad) < 0 < max(grad)  # signed, not a norm


def test_renders_with_dot_when_installed(tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dot"  # records its arguments and writes the output file, as dot would
    fake.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nfor a; do last=$a; done\n'
                    'echo "<svg/>" > "$last"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    code, out = run_graph(tmp_path, monkeypatch, "--format", "png",
                          path=str(bindir) + os.pathsep + "/bin")
    assert code == 0
    expected = ["-Tpng", str(out), "-o", str(tmp_path / "g.png")]
    assert (bindir / "args").read_text().split() == expected
    assert (tmp_path / "g.png").exists() and "rendered" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--shortcut", "A", "--in-channels", "32", "--out-channels", "16"],
     "shortcut 'A' can only add channels"),
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
