"""Hypothesis profiles: `ci` (derandomized, bounded; the default) and `thorough`.
Pick one with HYPOTHESIS_PROFILE=thorough (or pytest --hypothesis-profile=thorough).

`tinygrad-yolo train` runs in one process in the tests (TINYGRAD_YOLO_NPROC=1, whatever the
developer's shell says), so that they can watch and patch it; the tests of ranks ask for them."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, max_examples=15, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
os.environ["TINYGRAD_YOLO_NPROC"] = "1"
