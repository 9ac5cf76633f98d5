"""pytest for the exercises: `pytest exercises -m step3` checks your exercises/step3_*.py,
`pytest exercises --solutions -m step3` the reference solution. The step markers are
registered in pytest.ini (at the repository root)."""
import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `import exercises` and the checkout's tinygrad_yolo
    sys.path.insert(0, str(ROOT))

# tests/conftest.py's "ci" profile (derandomized, bounded), unless HYPOTHESIS_PROFILE names another
settings.register_profile("ci", derandomize=True, max_examples=15, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption("--solutions", action="store_true",
                     help="check the reference solutions in exercises/solutions/ instead of your "
                          "files")


def pytest_configure(config):
    if config.getoption("--solutions"):
        import exercises
        exercises.SOURCE = "solutions"


def pytest_report_header(config):
    import exercises
    source = os.environ.get("EXERCISES", exercises.SOURCE)
    checked = "exercises/solutions/" if source == "solutions" else "your files in exercises/"
    return f"exercises: checking {checked}"
