"""The demonstrations in examples/ at their smallest size (--smoke, which is --quick where a
demo has no smaller one): each one runs, writes its figures and its results JSON, and prints
the numbers its claim rests on, which are checked here. The training demos (4, 5, 6, 8's
sweep, 9's later steps) train for a few steps: only what holds at any step is checked, never
a training outcome. Then examples/README.md: its
numbers must be what the recorded full-size runs say, those runs must come from the current
demos, and the cheap demos must still print the same at full size."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_module(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))  # the demos import demo_common from beside them
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo(name, out_dir, capsys, *extra):
    """Run examples/<name>.py's main() at --smoke; return (results, stdout)."""
    results = load_module(name).main(["--smoke", "--out", str(out_dir), *extra])
    printed = capsys.readouterr().out
    assert results["figures"], f"{name} wrote no figure"
    for figure in results["figures"]:
        path = Path(figure)
        assert path.parent == out_dir and path.suffix == ".png"
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{figure} is not a PNG"
        assert f"figure: {figure}" in printed
    assert "runtime:" in printed
    written = json.loads((out_dir / f"{name}.json").read_text())
    run = written["run"]
    assert run["demo"] == name and run["quick"] is True and run["smoke"] is True
    return results, printed


def test_01_residual_split_sums_to_machine_precision(tmp_path, capsys):
    r, printed = run_demo("01_residual_split", tmp_path, capsys)
    for case in ("identity", "projection"):
        assert r[case]["forward_difference"] == 0.0  # the written-out forward is the block's own
        assert r[case]["max_abs_error"] <= 1e-12
        assert r[case]["relative_error"] <= 1e-12
        # backward() agrees with central differences
        assert r[case]["numeric_relative_error"] < 1e-6
        assert r[case]["norm_branch"] > 0
    assert r["identity"]["skip_minus_dy"] == 0.0  # the identity hands dL/dy over unchanged
    e = r["elements"]  # the figure's elements, each checked alone
    assert e["count"] == 36 and e["max_relative_error"] < 1e-6
    assert 0 < e["relu_off"] < e["count"] and e["branch_nonzero_where_off"] > 0
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
    # ResNet-56's by a modest factor (at this seed: about 2700x against 15x)
    assert r["train_plain56"]["spread"] > 100 * r["train_resnet56"]["spread"]
    assert r["train_resnet56"]["spread"] < 100
    # grows, does not vanish
    assert r["train_plain56"]["first_over_last"] > 100 and "explodes" in r["verdict"]
    # without normalisation (BN at its init statistics) the input gradient of plain-56 is
    # orders of magnitude below ResNet-56's
    assert r["eval_resnet56"]["input_grad_norm"] > 100 * r["eval_plain56"]["input_grad_norm"]
    # the synthetic stack: the gradient vanishes without skips and arrives intact with them
    assert abs(r["stack_skip"]["input_over_output"] - 1) < 0.01
    assert 0 < r["stack_plain"]["input_over_output"] < 1e-100
    assert "spread over depth plain-56 / ResNet-56" in printed


def test_04_degradation_runs_and_draws_curves(tmp_path, capsys):
    r, printed = run_demo("04_degradation", tmp_path, capsys)
    for name in ("plain20", "plain56", "resnet20", "resnet56"):
        losses = r[name]["losses"]
        assert len(losses) == r["steps"] == 16 and np.all(np.isfinite(losses))
        assert name in printed
    assert r["plain_gap"] == pytest.approx(r["plain56"]["final"] - r["plain20"]["final"])
    assert "deeper plain:" in printed and "deeper residual:" in printed


def test_05_superres_runs_and_residual_starts_at_the_input(tmp_path, capsys):
    r, printed = run_demo("05_superres_residual", tmp_path, capsys)
    assert len(r["figures"]) == 2
    for key in ("direct", "residual"):
        assert np.all(np.isfinite(r[key]["losses"]))
    # Before any update (step 1): x + f(x) starts near the input, f(x) must first learn to copy it.
    assert r["residual"]["first_loss"] < r["direct"]["first_loss"]
    assert r["residual_explained"] <= 1.0
    assert "MSE of the upsampled input itself" in printed


def test_06_yolo_progression_output_sizes(tmp_path, capsys):
    r, printed = run_demo("06_yolo_progression", tmp_path, capsys)
    assert r["S1_B1"]["outputs"] == 25 and r["S1_B1"]["output_shape"] == [1, 1, 25]
    assert r["S1_B2"]["outputs"] == 30 and r["S1_B2"]["output_shape"] == [1, 1, 30]
    assert r["S7_B2"]["outputs"] == 1470 and r["S7_B2"]["output_shape"] == [7, 7, 30]
    for key in ("S1_B1", "S1_B2", "S7_B2"):
        assert np.isfinite(r[key]["final_loss"]) and 0.0 <= r[key]["map50"] <= 1.0
    # one image with several objects: a 1x1 grid keeps one of them, the 7x7 grid all
    one = r["one_image"]
    assert [s["objects_in_target"] for s in one][:2] == [1, 1] and one[2]["objects_in_target"] >= 3
    assert one[0]["dropped"] == one[2]["objects_in_target"] - 1 and one[2]["dropped"] == 0
    assert len(r["figures"]) == 2 and "= 1470 numbers per image" in printed


def test_07_sqrt_table(tmp_path, capsys):
    r, printed = run_demo("07_sqrt_wh", tmp_path, capsys)
    big = (np.sqrt(20) - np.sqrt(18)) ** 2 + (np.sqrt(30) - np.sqrt(27)) ** 2
    small = (np.sqrt(4) - np.sqrt(2)) ** 2 + (np.sqrt(6) - np.sqrt(3)) ** 2
    assert r["big"]["raw"] == r["small"]["raw"] == 13.0  # the same absolute error
    assert r["big"]["sqrt"] == pytest.approx(big, abs=1e-12)
    assert big == pytest.approx(0.131670, abs=1e-6)
    assert r["small"]["sqrt"] == pytest.approx(small, abs=1e-12)
    assert small == pytest.approx(0.857864, abs=1e-6)
    for name in ("big", "small"):
        assert r[name]["via_loss"] == pytest.approx(r[name]["sqrt"], abs=1e-12)  # YOLOv1Loss agrees
    assert r["ratio_small_over_big"] == pytest.approx(small / big, rel=1e-12)
    # the same 10% relative error: 25x (the area ratio) on w, h, still 5x (the size ratio) on sqrt
    rel = r["relative"]
    assert rel["raw_big_over_small"] == pytest.approx(25.0, rel=1e-12)
    assert rel["sqrt_big_over_small"] == pytest.approx(5.0, rel=1e-12)
    assert rel["small"]["via_loss"] == pytest.approx(rel["small"]["sqrt"], abs=1e-12)
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
    # the sweep: one tracked run per lambda, the same init, so the same confidences at step 0
    assert sorted(r["sweep"]) == ["0.1", "0.5", "1"]
    starts = {lam: (t["object"][0], t["empty"][0]) for lam, t in r["sweep"].items()}
    assert len(set(starts.values())) == 1
    for t in r["sweep"].values():
        assert t["step"][-1] == 10 and np.all(np.isfinite(t["object"] + t["empty"]))
        assert 0 <= t["map50"] <= 1
    assert "of the confidence loss" in printed and len(r["figures"]) == 2


def test_09_yolo_gradients_go_where_the_loss_says(tmp_path, capsys):
    r, printed = run_demo("09_yolo_gradients", tmp_path, capsys)
    assert len(r["cells"]) >= 3
    assert r["shots"][0] == 0 and r["shots"][-1] == r["steps"]
    for step in r["shots"]:
        c = r[f"step_{step}"]
        # coordinates, sizes, classes: exactly nothing outside the object cells or for the other
        # predictor
        assert c["box_grad_outside_objects"] == 0.0 and c["class_grad_outside_objects"] == 0.0
        assert c["box_grad_other_predictor"] == 0.0
        assert c["box_grad_nonzero_cells"] == c["object_cells"] == len(r["cells"])
        assert c["conf_grad_nonzero_cells"] == 49  # the confidence: everywhere
        for formula in ("coord_formula", "obj_formula", "noobj_formula", "class_formula"):
            assert c[formula] <= 1e-12, formula
        assert c["numeric"]["ok"]
    track = r["track"]
    assert track["step"][0] == 0 and track["step"][-1] == r["steps"]
    assert all(len(row) == len(r["cells"]) for row in track["responsible"])
    assert all(t <= s for t, s in zip(r["tie_switches"], r["switches"]))
    assert "is responsible" in printed and len(r["figures"]) == 2


def test_a_demo_runs_as_a_script(tmp_path):
    """`python examples/07_sqrt_wh.py --quick --out DIR` from any folder (no import tricks)."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / "07_sqrt_wh.py"), "--quick",
                           "--out", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "6.52x" in proc.stdout and (tmp_path / "07_sqrt_wh.png").is_file()
    assert (tmp_path / "07_sqrt_wh.json").is_file()


# ---- examples/README.md: numbers from the recorded runs ---------------------------------------
def test_readme_numbers_are_the_recorded_results():
    numbers = load_module("readme_numbers")
    text = numbers.README.read_text(encoding="utf-8")
    assert numbers.replace_section(text, numbers.render(numbers.load())) == text, (
        "examples/README.md's numbers differ from examples/results/: "
        "run python examples/readme_numbers.py")


def test_recorded_results_come_from_the_current_demos():
    numbers, common = load_module("readme_numbers"), load_module("demo_common")
    known = {name for name, _, _ in numbers.RUNS}
    recorded = {p.stem for p in numbers.RESULTS.glob("*.json")}
    assert recorded <= known, "a result in examples/results/ is no run"
    for name, demo, flags in numbers.RUNS:
        if not (numbers.RESULTS / f"{name}.json").is_file():
            # not recorded: the README says so (test_readme_numbers_are_the_recorded_results)
            continue
        run = json.loads((numbers.RESULTS / f"{name}.json").read_text())["run"]
        assert run["demo"] == demo and not run["quick"]
        assert run["argv"][:len(flags)] == flags and run["argv"][len(flags)] == "--out"
        assert run["source_sha256"] == common.source_fingerprint(demo), \
            f"examples/{demo}.py changed since examples/results/{name}.json was recorded: " \
            f"python examples/readme_numbers.py --run {name}"


@pytest.mark.parametrize("name", ["01_residual_split", "02_identity_default", "07_sqrt_wh"])
def test_cheap_demos_still_print_what_was_recorded(name, tmp_path, capsys):
    """The deterministic float64 demos, rerun at full size: the README's paragraph is the same."""
    numbers = load_module("readme_numbers")
    paragraph = next(p for _, n, p in numbers.PARAGRAPHS if n == name)
    fresh = load_module(name).main(["--out", str(tmp_path)])
    capsys.readouterr()
    recorded = json.loads((numbers.RESULTS / f"{name}.json").read_text())
    common = load_module("demo_common")
    assert paragraph(json.loads(json.dumps(fresh, default=common._plain))) == paragraph(recorded)


# ---- docs/ stays true to the code ---------------------------------------------------------------
ROOT = EXAMPLES.parent
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "exercises" / "README.md"]


def quoted_blocks(path):
    import re

    return re.findall(r"<!-- quote: (\S+) -->\n```\w*\n(.*?)```", path.read_text(encoding="utf-8"),
                      flags=re.S)


def test_walkthrough_quotes_a_lot_of_code():
    assert len(quoted_blocks(WALKTHROUGH)) >= 16


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_quotes_are_real_code(doc):
    """Every block marked <!-- quote: FILE --> appears in FILE, line by line and in order
    ("..." marks lines left out)."""
    for path, code in quoted_blocks(doc):
        source = [line.strip() for line in (ROOT / path).read_text(encoding="utf-8").splitlines()]
        pos = 0
        for line in code.splitlines():
            wanted = line.strip()
            if not wanted or wanted == "...":
                continue
            assert wanted in source[pos:], f"{doc.name} quotes a line that is not in {path} " \
                                           f"(at or after line {pos + 1}): {wanted}"
            pos = source.index(wanted, pos) + 1


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_print_what_the_docs_say(doc, capsys):
    """Every <!-- example --> block runs, and prints exactly the text block that follows it."""
    import re

    examples = re.findall(r"<!-- example -->\n```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```",
                          doc.read_text(encoding="utf-8"), flags=re.S)
    if doc == WALKTHROUGH:
        assert len(examples) >= 2
    for code, printed in examples:
        exec(compile(code, f"{doc.name} example", "exec"), {})
        assert capsys.readouterr().out == printed


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_names_exist(doc):
    import re

    text = doc.read_text(encoding="utf-8")
    for target in re.findall(r"\]\((\.\.?/[^)#\s]+)\)", text):
        assert (doc.parent / target).exists(), f"broken link in {doc.name}: {target}"
    # every code-like name in backticks (snake_case or dotted) occurs somewhere in the sources
    folders = ("tinygrad_yolo", "kernels", "tests", "examples", "exercises", "benchmarks")
    sources = "\n".join(p.read_text(encoding="utf-8")
                        for folder in folders for p in (ROOT / folder).rglob("*")
                        if p.suffix in (".py", ".cu", ".h", ".sh"))
    # the results files
    sources += "\n".join(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").rglob("*"))
    for span in re.findall(r"`([^`\n]+)`", text):
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", span):
            if "_" in name or "." in name:
                last = name.split(".")[-1]
                assert last in sources, f"{doc.name} names {name!r}, which is not in the code"


def test_the_walkthroughs_core_path_says_nothing_of_locks_tiles_or_gpu_threads():
    """Sections 1-15 explain how the engine computes; how it is kept safe (locking) and made fast
    (tiles, warps, GEMM orientation, coalescing, NVRTC) waits in Part II and performance.md."""
    import re

    text = WALKTHROUGH.read_text(encoding="utf-8")
    core = text[text.index("## 1. Tensor"):text.index("# Part II")]
    internals = re.compile(r"\b(un)?lock(s|ed|ing)?\b|_Lock|_owner|MyGrad|\btiles?\b|\bwarps?\b|"
                           r"coalesc|nvrtc|orientation|\bgemm|blockIdx|threadIdx", re.I)
    found = [m.group(0) for m in internals.finditer(core)]
    assert not found, f"the walkthrough's core path mentions {sorted(set(found))}"
    for section in ("## 6. Batch normalisation", "## 7. The residual block",
                    "## 16. Saved arrays", "## 17. The fast paths and the CUDA kernel"):
        assert section in text
