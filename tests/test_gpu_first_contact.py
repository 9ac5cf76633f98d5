"""The prepared GPU run (benchmarks/gpu_check_all.sh, benchmarks/gpu_first_contact.py) runs on a
lent GPU for minutes at a time, unchanged: its first-contact script runs here through
testing/fake_cupy (parts 1-3; part 4, the float64 YOLO step, is what test_launch_budget.py's last
test checks through the same stand-in), and the shell script at least parses."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_first_contact_dry_run_passes_its_parts():
    out = subprocess.run([sys.executable, "benchmarks/gpu_first_contact.py", "--dry-run",
                          "--parts", "1,2,3"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")]
    assert any("kernel instances compiled" in line for line in lines if line.startswith("PASS"))
    assert any("GEMM layouts agree" in line for line in lines if line.startswith("PASS"))
    assert lines[-1] == "== 0 of 3 parts failed"


def test_the_gpu_script_parses_and_names_its_parts():
    script = ROOT / "benchmarks" / "gpu_check_all.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    for part in ("01_first_contact", "02_test_gpu", "03_train", "04_gpu_check"):
        assert f"part {part}" in text
    import re
    limits = [int(s) for s in re.findall(r"^part \S+ (\d+)", text, flags=re.M)]
    assert sum(limits) + 10 <= 600  # one 600-second command on the lent machine, kills included
