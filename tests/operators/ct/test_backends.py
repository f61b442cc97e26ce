"""CT backends: memory estimates, the memory-aware ``auto`` choice, the lean CSR build."""

from __future__ import annotations

import pytest
import torch

from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.ct.geometry import parallel_rays
from diffinv.operators.ct.joseph_sparse import build_matrix
from diffinv.operators.ct.projector import available_memory


def _nbytes(m: torch.Tensor) -> int:
    parts = (m.crow_indices(), m.col_indices(), m.values())
    return sum(t.numel() * t.element_size() for t in parts)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_estimate_bounds_the_built_pair(dtype):
    op = ParallelBeamRadon(24, 17, backend="sparse")
    A, At = op.matrices(dtype=dtype)
    assert A.values().dtype == dtype and A.col_indices().dtype == torch.int32
    assert _nbytes(A) + _nbytes(At) <= op.memory_estimate("sparse", dtype=dtype)
    assert op.memory_estimate("numba", batch=8) > op.memory_estimate("numba", batch=1) > 0
    with pytest.raises(ValueError, match="backend"):
        op.memory_estimate("dense")


def test_lean_build_equals_the_torch_build():
    op = ParallelBeamRadon(20, 13, backend="sparse")
    A, At = op.matrices(dtype=torch.float64)
    origin, direction = parallel_rays(op.angles, op.n_detectors, 1.0, op.rotation_center)
    B, Bt = build_matrix(origin, direction, 20, op.pixel_size, torch.float64)
    torch.testing.assert_close(A.to_dense(), B.to_dense(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(At.to_dense(), Bt.to_dense(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(At.to_dense(), A.to_dense().T)
    # rows of both matrices are sorted by column
    for m in (A, At):
        crow, col = m.crow_indices(), m.col_indices()
        for r in range(m.shape[0]):
            row = col[crow[r] : crow[r + 1]]
            assert bool((row[1:] > row[:-1]).all())


def test_auto_respects_available_memory():
    assert available_memory() > 0
    x = torch.rand(1, 1, 16, 16)
    op = ParallelBeamRadon(16, 10)
    assert op.backend_for(x) == "sparse"  # small: the sparse pair
    lean = ParallelBeamRadon(16, 10)
    lean.sparse_auto_memory_fraction = 1e-12  # no memory to spare: numba, nothing cached
    assert lean.backend_for(x) == "numba"
    torch.testing.assert_close(lean(x), op(x), rtol=1e-5, atol=1e-5)
    assert lean.backend_for(x) == "numba"  # the choice is kept
    forced = ParallelBeamRadon(16, 10, backend="sparse")  # the user's choice wins
    forced.sparse_auto_memory_fraction = 1e-12
    assert forced.backend_for(x) == "sparse"
