"""Interferometry tests multiply many small matrices (a few hundred visibilities by a
few tens of pixels): one BLAS thread is much faster than two there, and far more so on a
loaded machine, so these tests run single-threaded (restored afterwards)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread(_limit_threads):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
