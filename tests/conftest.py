"""Shared test fixtures.

Real measured data lives in ``../shared/data`` beside the repository (never copied into it);
tests that need it use the ``shared_data`` fixture and skip with a clear reason when absent.
The location can be overridden with the ``DIFFINV_SHARED_DATA`` environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# normalised dot-product error allowed in float64 (diffinv.operators.testing.check_adjoint)
ADJOINT_TOL = 1e-6


def random_matrix(m: int, n: int, complex_: bool, generator: torch.Generator) -> torch.Tensor:
    """An ``(m, n)`` float64 (or complex128) Gaussian matrix drawn from ``generator``."""
    a = torch.randn(m, n, dtype=torch.float64, generator=generator)
    if complex_:
        a = a + 1j * torch.randn(m, n, dtype=torch.float64, generator=generator)
    return a


def shared_data_dir() -> Path:
    """Directory of the real data sets (may not exist)."""
    env = os.environ.get("DIFFINV_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def benchmark_script():
    """``load(name)``: the module of ``benchmarks/<name>.py`` (scripts, not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def shared_data():
    """Return a function ``(subdir) -> Path`` that skips the test if the data is absent."""

    def get(subdir: str) -> Path:
        path = shared_data_dir() / subdir
        if not path.is_dir():
            pytest.skip(
                f"real data {subdir!r} not found under {shared_data_dir()} (../shared/data)"
            )
        return path

    return get


@pytest.fixture(autouse=True)
def _limit_threads():
    """Keep tests reproducible and polite on the 2-core CI machine."""
    torch.set_num_threads(1)
    yield
