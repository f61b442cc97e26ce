"""HMC with the likelihood-informed metric (the moves of ``smc`` ``method="tempered"``).

Exact references: a Gaussian prior with a linear-Gaussian likelihood, for which the tempered
target ``p(x) L(x)^lambda`` is the Gaussian posterior with noise variance ``sigma^2 /
lambda``.
"""

from __future__ import annotations

import math

import torch

from diffinv.solvers.smc.informed_hmc import InformedHMC, prior_root, whitened_hessian
from diffinv.testing.smc_cases import F64, gaussian_case, tempered_reference


def _mover(prior, problem, moves=1, leapfrog=5, target=0.65, seed=0):
    def grad_log_lik(x):
        ell, g = problem.grad_log_likelihood(x)
        return ell.to(F64), g.reshape(x.shape[0], -1).to(F64)

    root = prior_root(prior, prior.dim, None)
    return InformedHMC(prior.log_prob, grad_log_lik, root, moves, leapfrog, target,
                       torch.Generator().manual_seed(seed))


def test_metric_is_the_exact_posterior_covariance_for_a_linear_gaussian_problem():
    """For a quadratic log-likelihood the central differences are exact, so ``S S^T`` is the
    tempered posterior's covariance at any ``lambda`` (the Laplace approximation is exact)."""
    prior, problem = gaussian_case(n=5, m=3, sigma_y=0.05)
    hmc = _mover(prior, problem)
    x = prior.sample(7, torch.Generator().manual_seed(0))
    w = torch.full((7,), 1 / 7, dtype=F64)
    for lam in (1.0, 0.01):
        _, cov = tempered_reference(prior, problem, lam)[:2]
        s = hmc.metric(x, w, lam)
        assert torch.allclose(s @ s.T, cov, rtol=1e-5, atol=1e-9 * float(cov.abs().max()))
    s0 = hmc.metric(x, w, 0.0)
    assert torch.allclose(s0 @ s0.T, prior.cov, rtol=1e-8, atol=1e-12)


def test_hessian_ignores_points_outside_the_likelihood_domain():
    def grad(x):  # log L = -sum(x^2) / 2 on x[0] > 0, undefined elsewhere
        g = -x.clone()
        g[x[:, 0] <= 0] = float("nan")
        return -(x**2).sum(1) / 2, g

    h = whitened_hessian(grad, torch.tensor([1e-4, 0.0], dtype=F64), torch.eye(2, dtype=F64),
                         None)
    assert bool(torch.isfinite(h).all())
    assert abs(float(h[1, 1]) - 1.0) < 1e-6 and float(h[0, 0]) == 0.0


def test_moves_leave_the_tempered_posterior_invariant():
    prior, problem = gaussian_case(n=6, m=4, sigma_y=0.02)
    lam = 0.3
    mean, cov = tempered_reference(prior, problem, lam)[:2]
    n = 4000
    x = mean + torch.randn(n, 6, dtype=F64, generator=torch.Generator().manual_seed(1)) @ \
        torch.linalg.cholesky(cov).T
    hmc = _mover(prior, problem, moves=4)
    y, ell_y = hmc.move(x, torch.full((n,), 1 / n, dtype=F64), lam)
    assert torch.allclose(ell_y, problem.log_likelihood(y))
    moved = float((y != x).any(1).to(F64).mean())
    assert moved > 0.9  # the chain moves ...
    std = cov.diagonal().sqrt()
    assert bool(((y.mean(0) - mean).abs() <= 5 * std / math.sqrt(n)).all())  # ... and stays
    ratio = torch.cov(y.T).diagonal() / cov.diagonal()
    assert bool(((ratio - 1).abs() <= 5 * math.sqrt(2 / (n - 1))).all()), ratio
    assert x.data_ptr() != y.data_ptr()


def test_step_adaptation_reaches_the_target_acceptance():
    prior, problem = gaussian_case(n=8, m=5, sigma_y=0.05, seed=4)
    mean, cov = tempered_reference(prior, problem, 1.0)[:2]
    n = 400
    x = mean + torch.randn(n, 8, dtype=F64, generator=torch.Generator().manual_seed(2)) @ \
        torch.linalg.cholesky(cov).T
    for target in (0.65, 0.9):  # (below ~0.5 the step would pass the stability cap)
        hmc = _mover(prior, problem, moves=60, leapfrog=3, target=target)
        hmc.move(x, torch.full((n,), 1 / n, dtype=F64), 1.0)
        late = sum(hmc.acceptance[-30:]) / 30
        assert abs(late - target) < 0.06, (target, late)
