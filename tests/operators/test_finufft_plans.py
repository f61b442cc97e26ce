"""Cached finufft plans give the results of fresh (unplanned) finufft calls, and are reused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

finufft = pytest.importorskip("finufft")

from diffinv.operators.finufft_plans import PlanCache  # noqa: E402
from diffinv.operators.mri.nufft import make_backend  # noqa: E402


def _points(m=500, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-np.pi, np.pi, m), rng.uniform(-np.pi, np.pi, m)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_plans_match_fresh_calls_and_are_reused(dtype):
    x0, x1 = _points()
    cache = PlanCache((x0, x1), (24, 20))
    rng = np.random.default_rng(1)
    modes = (rng.standard_normal((3, 24, 20)) + 1j * rng.standard_normal((3, 24, 20))).astype(dtype)
    vals = (rng.standard_normal((3, 500)) + 1j * rng.standard_normal((3, 500))).astype(dtype)
    real = np.float32 if dtype == np.complex64 else np.float64
    eps, tol = (1e-6, 1e-5) if dtype == np.complex64 else (1e-12, 1e-10)
    p0, p1 = x0.astype(real), x1.astype(real)
    fresh2 = finufft.nufft2d2(p0, p1, modes, isign=-1, eps=eps)
    fresh1 = finufft.nufft2d1(p0, p1, vals, (24, 20), isign=1, eps=eps)
    for _ in range(2):  # the second round runs on the cached plans
        out2, out1 = cache.type2(modes), cache.type1(vals)
        assert out2.dtype == dtype and out1.shape == (3, 24, 20)
        assert np.abs(out2 - fresh2).max() <= tol * np.abs(fresh2).max()
        assert np.abs(out1 - fresh1).max() <= tol * np.abs(fresh1).max()
    torch_dtype = torch.complex64 if dtype == np.complex64 else torch.complex128
    assert cache.plan(2, 3, torch_dtype) is cache.plan(2, 3, torch_dtype)


def test_mri_finufft_backend_plans_match_fresh_backend():
    x0, x1 = _points(300, seed=2)
    omega = torch.from_numpy(np.stack([x0, x1], 1))
    g = torch.Generator().manual_seed(0)
    img = torch.randn(2, 16, 16, dtype=torch.complex128, generator=g)
    be = make_backend("finufft", omega, (16, 16))
    first = be.forward(img)
    torch.testing.assert_close(be.forward(img), first, rtol=0, atol=0)
    torch.testing.assert_close(make_backend("finufft", omega, (16, 16)).forward(img), first)
    ref = make_backend("dft", omega, (16, 16)).forward(img)
    assert float((first - ref).abs().max() / ref.abs().max()) < 1e-10


def test_fast_lookup_follows_evictions_and_thread_counts():
    # the per-call fast path (kind, n_trans, precision, torch threads) -> plan must never
    # hand out a plan the cache evicted, nor ignore a change of the thread count
    x0, x1 = _points(200, seed=3)
    cache = PlanCache((x0, x1), (12, 10), max_plans=1)
    rng = np.random.default_rng(4)
    modes = rng.standard_normal((2, 12, 10)) + 1j * rng.standard_normal((2, 12, 10))
    vals = rng.standard_normal((2, 200)) + 1j * rng.standard_normal((2, 200))
    want2 = finufft.nufft2d2(x0, x1, modes, isign=-1, eps=1e-12)
    want1 = finufft.nufft2d1(x0, x1, vals, (12, 10), isign=1, eps=1e-12)
    old = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            for _ in range(2):  # type 2 and type 1 evict each other (max_plans=1)
                p2 = cache.plan(2, 2, torch.complex128)
                assert np.abs(cache.type2(modes) - want2).max() <= 1e-10 * np.abs(want2).max()
                assert np.abs(cache.type1(vals) - want1).max() <= 1e-10 * np.abs(want1).max()
                assert cache.plan(2, 2, torch.complex128) is not p2  # evicted by type 1
    finally:
        torch.set_num_threads(old)
