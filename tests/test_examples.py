"""The demonstrations in examples/ at their reduced size (--small): each one runs, writes its
figures, and prints the numbers its claim rests on, which are checked here. Demos 4 and 5
train briefly: only that they run (and what holds before any update) is checked, never a
training outcome."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_demo(name, out_dir, capsys, *extra):
    """Import examples/<name>.py and run its main() at --small; return (results, stdout)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))  # the demos import demo_common from beside them
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--small", "--out", str(out_dir), *extra])
    printed = capsys.readouterr().out
    assert results["figures"], f"{name} wrote no figure"
    for figure in results["figures"]:
        path = Path(figure)
        assert path.parent == out_dir and path.suffix == ".png"
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{figure} is not a PNG"
        assert f"figure: {figure}" in printed
    assert "runtime:" in printed
    return results, printed


def test_01_residual_split_sums_to_machine_precision(tmp_path, capsys):
    r, printed = run_demo("01_residual_split", tmp_path, capsys)
    for case in ("identity", "projection"):
        assert r[case]["forward_difference"] == 0.0  # the written-out forward is the block's own
        assert r[case]["max_abs_error"] <= 1e-12
        assert r[case]["relative_error"] <= 1e-12
        assert r[case]["numeric_relative_error"] < 1e-6  # backward() agrees with central differences
        assert r[case]["norm_branch"] > 0
    assert r["identity"]["skip_minus_dy"] == 0.0  # the identity hands dL/dy over unchanged
    assert "max |dL/dx - (branch + skip)|" in printed and "central differences" in printed


def test_02_identity_default_is_exact(tmp_path, capsys):
    r, printed = run_demo("02_identity_default", tmp_path, capsys)
    assert r["output_minus_input"] == 0.0
    assert r["grad_minus_upstream_where_positive"] == 0.0
    assert r["grad_where_zero"] == 0.0
    assert r["stage_output_minus_input"] == 0.0
    assert r["stage_grad_minus_upstream_where_positive"] == 0.0
    # only the zeroed BN scale (and its shift) get a gradient: the branch can still switch on
    grads = r["param_grad_norms"]
    assert grads["bn2.weight"] > 0 and grads["conv1.weight"] == 0.0 and grads["conv2.weight"] == 0.0
    assert r["plain_output_max"] == 0.0 and r["plain_grad_max"] == 0.0
    assert r["default_init_output_minus_input"] > 0.1
    assert "max |block(x) - x|                    = 0.0e+00" in printed


def test_03_gradient_by_depth(tmp_path, capsys):
    r, printed = run_demo("03_gradient_superhighway", tmp_path, capsys)
    for key in ("train_plain56", "train_resnet56", "eval_plain56", "eval_resnet56"):
        g = np.array(r[key]["block_grad_norms"])
        assert g.shape == (27,) and np.all(np.isfinite(g)) and np.all(g > 0)
    # BN in training mode: the plain net's gradient drifts by orders of magnitude across depth,
    # ResNet-56's by a modest factor (at this seed: about 2700x against 16x)
    assert r["train_plain56"]["spread"] > 100 * r["train_resnet56"]["spread"]
    assert r["train_resnet56"]["spread"] < 100
    # without normalisation (BN at its init statistics) the input gradient of plain-56 is
    # orders of magnitude below ResNet-56's
    assert r["eval_resnet56"]["input_grad_norm"] > 100 * r["eval_plain56"]["input_grad_norm"]
    assert "spread over depth plain-56 / ResNet-56" in printed


def test_04_degradation_runs_and_draws_curves(tmp_path, capsys):
    r, printed = run_demo("04_degradation", tmp_path, capsys)
    for name in ("plain20", "plain56", "resnet20", "resnet56"):
        losses = r[name]["losses"]
        assert len(losses) == r["steps"] == 3 and np.all(np.isfinite(losses))
        assert name in printed
    assert "deeper plain:" in printed and "deeper residual:" in printed


def test_05_superres_runs_and_residual_starts_at_the_input(tmp_path, capsys):
    r, printed = run_demo("05_superres_residual", tmp_path, capsys)
    assert len(r["figures"]) == 2
    for key in ("direct", "residual"):
        assert np.all(np.isfinite(r[key]["losses"]))
    # Before any update (step 1): x + f(x) starts near the input, f(x) must first learn to copy it.
    assert r["residual"]["first_loss"] < r["direct"]["first_loss"]
    assert "MSE of the upsampled input itself" in printed


def test_06_yolo_progression_output_sizes(tmp_path, capsys):
    r, printed = run_demo("06_yolo_progression", tmp_path, capsys)
    assert r["S1_B1"]["outputs"] == 25 and r["S1_B1"]["output_shape"] == [1, 1, 25]
    assert r["S1_B2"]["outputs"] == 30 and r["S1_B2"]["output_shape"] == [1, 1, 30]
    assert r["S7_B2"]["outputs"] == 1470 and r["S7_B2"]["output_shape"] == [7, 7, 30]
    for stage in r.values():
        if isinstance(stage, dict):
            assert np.isfinite(stage["final_loss"]) and 0.0 <= stage["map50"] <= 1.0
    assert "= 1470 numbers per image" in printed


def test_07_sqrt_table(tmp_path, capsys):
    r, printed = run_demo("07_sqrt_wh", tmp_path, capsys)
    big = (np.sqrt(20) - np.sqrt(18)) ** 2 + (np.sqrt(30) - np.sqrt(27)) ** 2
    small = (np.sqrt(4) - np.sqrt(2)) ** 2 + (np.sqrt(6) - np.sqrt(3)) ** 2
    assert r["big"]["raw"] == r["small"]["raw"] == 13.0  # the same absolute error
    assert r["big"]["sqrt"] == pytest.approx(big, abs=1e-12) and big == pytest.approx(0.131670, abs=1e-6)
    assert r["small"]["sqrt"] == pytest.approx(small, abs=1e-12) and small == pytest.approx(0.857864, abs=1e-6)
    for name in ("big", "small"):
        assert r[name]["via_loss"] == pytest.approx(r[name]["sqrt"], abs=1e-12)  # YOLOv1Loss agrees
    assert r["ratio_small_over_big"] == pytest.approx(small / big, rel=1e-12)
    assert "0.131670" in printed and "0.857864" in printed and "6.52x" in printed


def test_08_lambda_noobj_shares(tmp_path, capsys):
    r, printed = run_demo("08_lambda_noobj", tmp_path, capsys)
    O, E, R = r["obj"], r["noobj_empty"], r["noobj_other"]
    assert r["object_cell_fraction"] < 0.2  # most cells are empty
    for lam in (1.0, 0.5):
        row = r[f"lambda_{lam:g}"]
        assert row["check"] < 1e-9  # the split adds up to YOLOv1Loss's obj and noobj parts
        assert row["share_empty"] == pytest.approx(lam * E / (O + lam * (E + R)), rel=1e-12)
        assert 0 < row["grad_share_empty"] < 1
    assert r["lambda_0.5"]["share_empty"] < r["lambda_1"]["share_empty"]
    assert r["lambda_1"]["share_empty"] > 0.5  # at lambda 1 the empty cells dominate
    assert r["break_even_lambda"] == pytest.approx(O / (E - R), rel=1e-12)
    assert "of the confidence loss" in printed


def test_a_demo_runs_as_a_script(tmp_path):
    """`python examples/07_sqrt_wh.py --quick --out DIR` from any folder (no import tricks)."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / "07_sqrt_wh.py"), "--quick", "--out", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "6.52x" in proc.stdout and (tmp_path / "07_sqrt_wh.png").is_file()


# ---- docs/walkthrough.md stays true to the code ---------------------------------------------
ROOT = EXAMPLES.parent
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"


def test_walkthrough_quotes_are_real_code():
    """Every block marked <!-- quote: FILE --> appears in FILE, line by line and in order
    ("..." marks lines left out)."""
    import re

    blocks = re.findall(r"<!-- quote: (\S+) -->\n```\w*\n(.*?)```", WALKTHROUGH.read_text(), flags=re.S)
    assert len(blocks) >= 8
    for path, code in blocks:
        source = [line.strip() for line in (ROOT / path).read_text().splitlines()]
        pos = 0
        for line in code.splitlines():
            wanted = line.strip()
            if not wanted or wanted == "...":
                continue
            assert wanted in source[pos:], f"docs/walkthrough.md quotes a line that is not in {path} " \
                                           f"(at or after line {pos + 1}): {wanted}"
            pos = source.index(wanted, pos) + 1


def test_walkthrough_links_and_names_exist():
    import re

    text = WALKTHROUGH.read_text()
    for target in re.findall(r"\]\((\.\./[^)#\s]+)\)", text):
        assert (WALKTHROUGH.parent / target).exists(), f"broken link in docs/walkthrough.md: {target}"
    # every code-like name in backticks (snake_case or dotted) occurs somewhere in the sources
    sources = "\n".join(p.read_text() for folder in ("tinygrad_yolo", "kernels", "tests")
                        for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".cu", ".h"))
    for span in re.findall(r"`([^`\n]+)`", text):
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", span):
            if "_" in name or "." in name:
                last = name.split(".")[-1]
                assert last in sources, f"docs/walkthrough.md names {name!r}, which is not in the code"
