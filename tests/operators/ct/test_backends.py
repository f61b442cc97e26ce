"""CT backends: memory estimates, the memory-aware ``auto`` choice, the lean CSR build."""

from __future__ import annotations

import pytest
import torch

from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.ct.geometry import parallel_rays
from diffinv.operators.ct.joseph_sparse import build_matrix, ray_parameters
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


def test_numba_batch_tiles_and_blocks_match_the_sparse_pair(monkeypatch):
    # Small tiles (16 of 40 columns: three tiles, the last partial) and several ray blocks,
    # the paths a large batch takes, give the sparse matrix's products in float64.
    from diffinv.operators.ct import joseph_numba

    monkeypatch.setattr(joseph_numba, "TILE_BYTES", 1)
    assert joseph_numba.tile_columns(40, 3, 8) == 16
    sparse = ParallelBeamRadon(40, 23, backend="sparse")
    numba_op = ParallelBeamRadon(40, 23, backend="numba")
    x = torch.randn(3, 1, 40, 40, dtype=torch.float64)
    y = torch.randn(3, *sparse.out_shape, dtype=torch.float64)
    torch.testing.assert_close(numba_op(x), sparse(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(numba_op.adjoint(y), sparse.adjoint(y), rtol=1e-12, atol=1e-12)
    # several ray blocks (each with its own accumulators / buffers), as the parallel kernels
    xf, yf = x.reshape(3, -1), y.reshape(3, -1)
    rays = parallel_rays(sparse.angles, sparse.n_detectors, 1.0, sparse.rotation_center)
    params = ray_parameters(*rays, 40, sparse.pixel_size)
    pairs = ((joseph_numba.forward, xf, sparse(x)), (joseph_numba.adjoint, yf, sparse.adjoint(y)))
    for fn, arg, ref in pairs:
        out = fn(arg, params, 40, n_blocks=4)
        torch.testing.assert_close(out, ref.reshape(3, -1), rtol=1e-12, atol=1e-12)
    # float32 batches interpolate in float32: equal to the float64 product to rounding
    x32 = x.float()
    torch.testing.assert_close(numba_op(x32).double(), sparse(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_single_image_path_equals_the_batched_product(dtype):
    """One image takes scipy's CSR product, batches torch's: same numbers, same dtype."""
    op = ParallelBeamRadon(20, 13, backend="sparse")
    A, At = op.matrices(dtype=dtype)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 20, 20, dtype=dtype, generator=gen)
    y = torch.rand(2, 1, 13, op.n_detectors, dtype=dtype, generator=gen)
    fwd1, adj1 = op(x[:1]), op.adjoint(y[:1])
    assert fwd1.dtype == dtype and adj1.dtype == dtype
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(fwd1, op(x)[:1], **tol)
    torch.testing.assert_close(adj1, op.adjoint(y)[:1], **tol)
    want = (A.to_dense() @ x[0].reshape(-1)).reshape(fwd1.shape)
    torch.testing.assert_close(fwd1, want, **tol)


def test_sparse_single_image_with_threads_equals_the_serial_path():
    """With several threads worth using, one image stays in torch: same numbers."""
    from diffinv.threads import thread_limit, threads_for

    op = ParallelBeamRadon(128, 90, backend="sparse")
    x = torch.rand(1, 1, 128, 128, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(4))
    nnz = op.matrices(dtype=torch.float64)[0]._nnz()
    with thread_limit(1):
        assert threads_for(nnz) == 1  # the scipy path
        serial = op(x)
    with thread_limit(2):
        assert threads_for(nnz) == 2  # torch.sparse.mm on 2 threads
        threaded = op(x)
    torch.testing.assert_close(serial, threaded)
