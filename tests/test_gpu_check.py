"""benchmarks/gpu_check.py runs on a lent GPU machine for a few minutes at a time, so a broken
harness wastes that time: its dry run (the same code paths on the CPU, tiny sizes) runs here."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_dry_run(tmp_path):
    logs = tmp_path / "logs"
    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--logs", str(logs),
                          "--sections", "conv,step,train,launch,fused", "--train-out", str(tmp_path / "train")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rows = [json.loads(line) for line in (logs / "conv.log").read_text().splitlines()]
    assert [r["case"] for r in rows][:2] == ["conv1_7x7_s2", "layer1_3x3"] and all(r["ours_ms"] > 0 for r in rows)
    step = json.loads((logs / "step.log").read_text().splitlines()[0])
    assert step["config"] == "tiny_b32" and step["ours_s"] > 0
    assert "per-op profile" in (logs / "step.log").read_text()
    assert json.loads((logs / "train.log").read_text().splitlines()[-1])["steps"] == 2
    assert "device calls" in (logs / "launch.log").read_text()
    fused = [json.loads(line) for line in (logs / "fused.log").read_text().splitlines()]
    assert [r["case"] for r in fused][-2:] == ["sgd_momentum_step", "adamw_step"]
    assert all(r["max_rel_err_vs_cpu"] < 1e-4 for r in fused if "max_rel_err_vs_cpu" in r)
    assert all(r["max_abs_err_vs_cpu"] < 1e-6 for r in fused if "max_abs_err_vs_cpu" in r)
    for section in ("conv2d fwd+bwd vs torch", "training step", "train (default config)", "device calls per step",
                    "fused BN / optimizer"):
        assert section in out.stdout
