"""Matrix-free linear-Gaussian steps (CG, perturbation-optimisation) and chunked batching."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.operators import InverseProblem
from diffinv.operators.elementary import Diagonal, MatrixOperator, RealToComplex
from diffinv.operators.noise import GaussianNoise, PoissonNoise
from diffinv.solvers.batching import check_max_batch, merge_diagnostics, run_chunked
from diffinv.solvers.context import RunContext
from diffinv.solvers.gaussian_data import LinearGaussianData, batched_cg
from diffinv.solvers.registry import SolverOutput


def dense_conditional(a, y, var, m, r):
    """Reference: mean and covariance of N(m, r^2 I) conditioned on y = a x + N(0, diag var)."""
    q = a.T @ (a / var[:, None]) + torch.eye(a.shape[1], dtype=a.dtype) / r**2
    cov = torch.linalg.inv(q)
    mean = cov @ (a.T @ (y / var) + m / r**2)
    return mean, cov


def complex_problem(seed=0):
    """Complex data, per-measurement sigmas, via RealToComplex on a (2, 2, 2) real image."""
    g = torch.Generator().manual_seed(seed)
    mat = torch.complex(torch.randn(5, 4, generator=g, dtype=torch.float64),
                        torch.randn(5, 4, generator=g, dtype=torch.float64))
    op = MatrixOperator(mat, in_shape=(1, 2, 2)) @ RealToComplex()
    sigma = 0.2 + torch.rand(5, generator=g, dtype=torch.float64)
    y = GaussianNoise(sigma).sample(op(torch.randn(1, 2, 2, 2, generator=g,
                                                   dtype=torch.float64)), g)
    # reference real system built independently: rows [Re; Im], sigma per part
    d = 8
    cols = op(torch.eye(d, dtype=torch.float64).reshape(d, 2, 2, 2)).reshape(d, -1)
    a = torch.cat([cols.real.T, cols.imag.T])
    yr = torch.cat([y.real.reshape(-1), y.imag.reshape(-1)])
    var = torch.cat([sigma**2, sigma**2])
    return InverseProblem(op, GaussianNoise(sigma), y, image_shape=(2, 2, 2)), a, yr, var


def test_batched_cg_solves_independent_systems():
    g = torch.Generator().manual_seed(1)
    b = torch.randn(6, 6, generator=g, dtype=torch.float64)
    mat = b @ b.T + 0.5 * torch.eye(6, dtype=torch.float64)
    rhs = torch.randn(3, 6, generator=g, dtype=torch.float64)
    x, it, rel = batched_cg(lambda v: v @ mat, rhs, tol=1e-12, max_iter=50)
    assert torch.allclose(x, torch.linalg.solve(mat, rhs.T).T, atol=1e-9)
    assert rel < 1e-12 and it <= 12


def test_conditional_mean_matches_dense_formula_complex_data():
    problem, a, y, var = complex_problem()
    data = LinearGaussianData(problem, torch.float64)
    m = torch.randn(2, 2, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = data.conditional_mean(m, r=0.7)
    for i in range(2):
        ref, _ = dense_conditional(a, y, var, m[i].reshape(-1), 0.7)
        assert torch.allclose(out[i].reshape(-1), ref, atol=1e-8)
    assert data.max_residual < 1e-9


def test_perturbation_optimisation_draws_have_exact_moments():
    problem, a, y, var = complex_problem(seed=4)
    data = LinearGaussianData(problem, torch.float64)
    n = 20000
    m0 = torch.linspace(-1, 1, 8, dtype=torch.float64)
    m = m0.reshape(1, 2, 2, 2).expand(n, 2, 2, 2)
    draws = data.conditional_sample(m, 0.8, torch.Generator().manual_seed(5)).reshape(n, -1)
    mean, cov = dense_conditional(a, y, var, m0, 0.8)
    chol = torch.linalg.cholesky(cov)
    z = torch.linalg.solve_triangular(chol, (draws - mean).T, upper=False)
    # whitened moments of n exact draws: mean ~ N(0, 1/n), cov entries sd <= sqrt(2/n)
    assert float(z.mean(1).abs().max()) < 4.5 / math.sqrt(n)
    assert float((torch.cov(z) - torch.eye(8, dtype=torch.float64)).abs().max()) < 4.5 * math.sqrt(
        2 / n)


def test_float32_chains_and_lipschitz():
    mask = torch.tensor([[[1.0, 0.0], [2.0, 1.0]]], dtype=torch.float64)
    y = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    data = LinearGaussianData(InverseProblem(Diagonal(mask), GaussianNoise(0.5), y),
                              torch.float32)
    assert data.lipschitz((1, 2, 2)) == pytest.approx(1.05 * 4.0 / 0.25, rel=1e-4)
    out = data.conditional_mean(torch.zeros(3, 1, 2, 2), r=1.0)
    assert out.dtype == torch.float32
    expected = (mask * 4.0) / (mask**2 * 4.0 + 1.0)  # per-pixel closed form, y = 1
    assert torch.allclose(out[0], expected.float(), atol=1e-5)


def test_rejects_non_gaussian_problems():
    problem = InverseProblem(Diagonal(torch.ones(3)), PoissonNoise(1.0), torch.ones(1, 3))
    with pytest.raises(ValueError, match="GaussianNoise"):
        LinearGaussianData(problem, torch.float64)
    data = LinearGaussianData(InverseProblem(Diagonal(torch.ones(3)), GaussianNoise(1.0),
                                             torch.ones(1, 3)), torch.float64)
    with pytest.raises(ValueError, match="precision"):
        data.solve(torch.ones(1, 3, dtype=torch.float64), 0.0)


def test_run_chunked_joins_chunks_and_merges_diagnostics():
    calls = []

    def run(ctx):
        n, offset = ctx.n_samples, ctx.chain_offset
        calls.append((n, offset))
        samples = torch.arange(offset, offset + n, dtype=torch.float64)[:, None]
        return SolverOutput(samples=samples, nfe=7, diagnostics={
            "mean_value": float(offset), "max_cg_iterations": n, "per_step": [1.0 * n, 2.0],
            "mode": "gaussian"})

    ctx = RunContext(sigmas=torch.tensor([1.0, 0.0]), n_samples=10, image_shape=(1,),
                     dtype=torch.float64, generator=torch.Generator())
    out = run_chunked(run, ctx, 4)
    assert calls == [(4, 0), (4, 4), (2, 8)]
    assert torch.equal(out.samples[:, 0], torch.arange(10, dtype=torch.float64))
    assert out.nfe == 7 and out.diagnostics["n_chunks"] == 3
    assert out.diagnostics["mean_value"] == pytest.approx((0 * 4 + 4 * 4 + 8 * 2) / 10)
    assert out.diagnostics["max_cg_iterations"] == 4
    assert out.diagnostics["per_step"] == pytest.approx([(16 + 16 + 4) / 10, 2.0])
    assert out.diagnostics["mode"] == "gaussian"
    assert merge_diagnostics([{"a": 1}], [3]) == {"a": 1.0}
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_batch"):
            check_max_batch(bad)
