"""keep_freed_memory: glibc malloc tuning, applied where malloc is glibc's, a no-op elsewhere."""
import platform
import subprocess
import sys

from tinygrad_yolo.memory import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_applies_on_glibc_and_reports_false_elsewhere():
    # Run in a child process: the setting is process-wide and must not leak into the test session.
    code = "from tinygrad_yolo.memory import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(GLIBC)


def test_freed_arrays_are_reused_without_new_page_faults():
    if not GLIBC:
        assert keep_freed_memory() is False
        return
    code = (
        "import resource, numpy as np\n"
        "from tinygrad_yolo.memory import keep_freed_memory\n"
        "import sys\n"
        "if sys.argv[1] == 'on': keep_freed_memory()\n"
        "np.ones(8 << 20, np.float32)\n"  # 32 MB: above glibc's default mmap threshold
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(5): np.ones(8 << 20, np.float32)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)\n")
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("off", "on")}
    assert faults["on"] < faults["off"] / 10, faults
