"""device='cuda' on a machine whose CuPy imports and sees a GPU but lacks its CUDA libraries (a
plain `pip install cupy-cuda12x` without the [ctk] extra or a toolkit): the up-front probe and the
GEMM fail in one line naming the library and the fix, never with a traceback at the first
convolution. CuPy is stood in for by testing/fake_cupy with one library made to fail as CuPy 14
fails: an ImportError on first touch."""
import types

import numpy as np
import pytest

from tinygrad_yolo import backend
from tinygrad_yolo.testing import fake_cupy

CUPY14_ERROR = ('Failure finding "libcublasLt.so.13 or libcublasLt.so.12": '
                "libcublasLt.so.12: cannot open shared object file")


class _RaisingCuda(types.ModuleType):
    """fake_cupy.cuda whose ``cublas`` raises ImportError on access, as CuPy 14's lazy loader does
    (getattr's default would not catch it)."""

    def __getattr__(self, name):
        if name == "cublas":
            raise ImportError(CUPY14_ERROR)
        return getattr(fake_cupy.cuda, name)


def _without_cublas():
    cp = types.ModuleType("cupy_without_cublas")
    cp.__getattr__ = lambda name: getattr(fake_cupy, name)
    cp.cuda = _RaisingCuda("cupy.cuda")
    return cp


def _without_nvrtc():
    class Module(fake_cupy.RawModule):
        def get_function(self, name):
            raise ImportError('Failure finding "libnvrtc.so.12"')
    cp = types.ModuleType("cupy_without_nvrtc")
    cp.__getattr__ = lambda name: getattr(fake_cupy, name)
    cp.RawModule = Module
    return cp


def test_the_probe_passes_where_the_libraries_load():
    with fake_cupy.installed() as cp:
        assert backend.probe_cuda_libraries() is cp


@pytest.mark.parametrize("make,library", [(_without_cublas, "cuBLAS"), (_without_nvrtc, "NVRTC")])
def test_a_missing_library_is_one_line_naming_it_and_the_fix(make, library):
    with backend.use_cupy(make()):
        with pytest.raises(RuntimeError) as err:
            backend.probe_cuda_libraries()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(library)
    assert "[ctk]" in message and "CUDA toolkit" in message


def test_the_gemm_names_a_missing_cublas_instead_of_an_import_error():
    gemm = backend.cuda_kernels("gemm")
    cp = _without_cublas()
    with fake_cupy.installed():
        a = fake_cupy.asarray(np.ones((2, 3), np.float32))
        b = fake_cupy.asarray(np.ones((3, 4), np.float32))
        with backend.use_cupy(cp):
            with pytest.raises(RuntimeError, match=r"^cuBLAS could not be loaded .*\[ctk\]"):
                gemm.batched_matmul(a, b)


def test_train_device_cuda_refuses_up_front_in_one_line(tmp_path, capsys):
    from tinygrad_yolo.cli import main
    with backend.use_cupy(_without_cublas()):
        rc = main(["train", "--device", "cuda", "--steps", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc != 0
    assert "--device cuda: cuBLAS could not be loaded" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_the_cuda_extras_pull_cupy_with_its_libraries():
    # a plain cupy-cuda12x assumes a system CUDA toolkit; its [ctk] extra (CuPy >= 14) brings
    # cuBLAS, NVRTC and the runtime from PyPI
    import ast
    import os
    setup = os.path.join(os.path.dirname(__file__), os.pardir, "setup.py")
    tree = ast.parse(open(setup, encoding="utf-8").read())
    extras = next(k.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                  for k in node.keywords if k.arg == "extras_require")
    extras = ast.literal_eval(extras)
    assert extras["cuda12"] == ["cupy-cuda12x[ctk]>=14"]
    assert extras["cuda13"] == ["cupy-cuda13x[ctk]>=14"]
