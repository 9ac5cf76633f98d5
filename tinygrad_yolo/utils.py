"""Reproducibility: one package-wide random generator.

``tg.seed(n)`` (or PyTorch's name, ``tg.manual_seed(n)``) reseeds it (and NumPy's global RNG,
which ``tg.randn``/``tg.rand`` use), so weight initialisation, dropout masks and anything else
drawing from ``get_rng()`` repeat exactly from run to run.
"""
import numpy as np

_rng = np.random.default_rng()


def seed(n):
    """Seed the package generator (init, Dropout), NumPy's global RNG and, when a GPU
    is in use, CuPy's; returns the new generator."""
    global _rng
    n = int(n)
    if n < 0:
        raise ValueError(f"seed must be >= 0, got {n}")
    _rng = np.random.default_rng(n)
    np.random.seed(n % 2**32)
    from . import backend
    cupy = backend.loaded_cupy()
    if cupy is not None:  # only if CuPy is already loaded: seeding must not start a GPU
        cupy.random.seed(n % 2**32)
    return _rng


def manual_seed(n):
    """PyTorch's name for ``seed``: reseed every generator the package draws from. Returns the
    package's ``np.random.Generator`` (PyTorch returns a torch.Generator)."""
    return seed(n)


def get_rng():
    """The package-wide ``np.random.Generator`` (reseeded by ``seed``)."""
    return _rng
