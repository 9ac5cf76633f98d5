"""Importing the package: OpenBLAS's thread timeout is set before NumPy loads, a user's value
wins."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env_after_import(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_value
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    code = "import os, tinygrad_yolo; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("user_value, expected", [(None, "4"), ("7", "7")])
def test_openblas_thread_timeout_is_set_on_import_unless_the_user_set_it(user_value, expected):
    assert _env_after_import(user_value) == expected


def test_the_package_sets_it_before_numpy_is_imported():
    # The setting only works if NumPy (and so OpenBLAS) is not loaded yet when it is made:
    # record the variable at the moment numpy is first imported.
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    probe = ("import builtins, os\n"
             "real = builtins.__import__\n"
             "def spy(name, *a, **k):\n"
             "    if name == 'numpy' and 'seen' not in globals():\n"
             "        globals()['seen'] = os.environ.get('OPENBLAS_THREAD_TIMEOUT')\n"
             "    return real(name, *a, **k)\n"
             "builtins.__import__ = spy\n"
             "import tinygrad_yolo\n"
             "print(seen)\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "4"
