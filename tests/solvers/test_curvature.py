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
from diffinv.solvers.curvature import likelihood_curvature

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
