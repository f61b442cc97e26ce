"""Likelihood curvature estimates that set the default step sizes of gradient data steps."""

import pytest
import torch

import diffinv
from diffinv.demos import get_demo
from diffinv.operators import (
    ElementwiseOperator,
    GaussianNoise,
    InverseProblem,
    MatrixOperator,
    PoissonNoise,
)
from diffinv.solvers.curvature import likelihood_curvature, likelihood_hessian

g = torch.Generator().manual_seed(4)


def test_linear_gaussian_curvature_is_the_operator_norm_over_sigma_squared():
    a = torch.randn(7, 5, dtype=torch.float64, generator=g)
    prob = InverseProblem(MatrixOperator(a), GaussianNoise(0.3), torch.zeros(1, 7))
    x = torch.randn(1, 5, dtype=torch.float64, generator=g)
    est = likelihood_curvature(prob, x, iterations=200, generator=g)
    exact = float(torch.linalg.matrix_norm(a, 2)) ** 2 / 0.09
    assert est == pytest.approx(exact, rel=1e-4)


def test_poisson_curvature_matches_the_analytic_hessian():
    # -log p = sum(lam - y log lam), lam = x: Hessian diag(y / x^2)
    y = torch.tensor([[4.0, 9.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[2.0, 1.0, 3.0]], dtype=torch.float64)
    prob = InverseProblem(ElementwiseOperator(lambda z: z), PoissonNoise(), y, image_shape=(3,))
    est = likelihood_curvature(prob, x, iterations=100, generator=g)
    assert est == pytest.approx(9.0, rel=1e-3)


def test_default_curvature_keeps_daps_stable_on_multicoil_mri():
    # before the default estimate, DAPS on this non-Gaussian (coil covariance) likelihood took
    # a first Langevin step ~ lr * sigma_max^2 and became NaN at step 0.  (The demo itself now
    # has a masked GaussianNoise and exact steps; the same data under CoilNoise does not.)
    from diffinv.operators.mri import CoilNoise

    demo = get_demo("mri-multicoil")(seed=0, size=32)
    p = demo.problem
    coil = CoilNoise(torch.full((8,), 2 * 0.005**2, dtype=torch.float64), mask=p.noise.mask)
    problem = InverseProblem(p.operator, coil, p.y, image_shape=p.image_shape)
    assert not problem.is_linear_gaussian
    post = diffinv.sample(problem, demo.prior, "daps", n_samples=2, steps=8, ode_steps=1)
    assert torch.isfinite(post.samples).all()
    assert post.diagnostics["lipschitz"] > 1e3


def test_curvature_rejects_a_batch():
    prob = InverseProblem(MatrixOperator(torch.eye(2)), GaussianNoise(1.0), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="x: expected a single image"):
        likelihood_curvature(prob, torch.zeros(3, 2))


@pytest.mark.parametrize("rank", [3, 5])
def test_low_rank_hessian_is_the_gauss_newton_matrix_of_a_linear_gaussian_likelihood(rank):
    """3 data values, 8 unknowns: rank 3 recovers ``A^T A / sigma^2`` (finite differences
    of the gradient, exact for a quadratic); a larger rank adds zero eigenvalues."""
    a = torch.randn(3, 8, dtype=torch.float64, generator=g)
    prob = InverseProblem(MatrixOperator(a), GaussianNoise(0.2), torch.randn(1, 3,
                                                                           generator=g))
    x = torch.randn(1, 8, dtype=torch.float64, generator=g)
    w, lam = likelihood_hessian(prob, x, rank, generator=g)
    assert w.shape == (8, rank) and lam.shape == (rank,)
    torch.testing.assert_close(w.T @ w, torch.eye(rank, dtype=torch.float64))
    exact = a.T @ a / 0.04
    torch.testing.assert_close((w * lam) @ w.T, exact, rtol=0, atol=1e-6 * float(exact.abs().max()))
    assert bool((lam[:-1] >= lam[1:]).all()) and bool((lam[3:] < 1e-6 * lam[0]).all())


def test_low_rank_hessian_clips_negative_curvature_and_checks_its_rank():
    # -log p = sum (x^2 - y)^2 / 2, Hessian diag(6 x^2 - 2 y): at x = 1, y = (0, 4): (6, -2)
    prob = InverseProblem(ElementwiseOperator(lambda z: z**2), GaussianNoise(1.0),
                          torch.tensor([[0.0, 4.0]], dtype=torch.float64), image_shape=(2,))
    w, lam = likelihood_hessian(prob, torch.ones(1, 2, dtype=torch.float64), 2, generator=g)
    torch.testing.assert_close(lam, torch.tensor([6.0, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(w[:, 0].abs(), torch.tensor([1.0, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="rank: expected an integer in"):
        likelihood_hessian(prob, torch.ones(1, 2, dtype=torch.float64), 3)
