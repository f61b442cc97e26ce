"""MCMC rejuvenation kernels (MALA, HMC, pCN) leave their tempered, twisted target invariant.

For a Gaussian prior ``N(m, C)`` the denoiser is affine, ``D(x) = m + K (x - m)`` with
``K = C (C + sigma^2 I)^{-1}``, so the rejuvenation target at level ``sigma`` and exponent
``e``, ``p_sigma(x) exp(e log N(y; A D(x), sigma_y^2))``, is the Gaussian
``N(m, C + sigma^2 I)`` conditioned on ``y = A K x + A (I - K) m + N(0, sigma_y^2 / e)``
exactly.  Exact draws from it, moved by many sweeps, must keep their mean and covariance
(checked at 5 Monte-Carlo standard errors of independent draws).
"""

from __future__ import annotations

import pytest
import torch

from diffinv.operators.linear_gaussian import real_linear_system
from diffinv.priors.gaussian import gaussian_conditional
from diffinv.solvers.smc.rejuvenation import DEFAULT_ACCEPTANCE, Rejuvenation, evaluate
from diffinv.testing.smc_cases import F64, gaussian_case

N = 4000


def _target(prior, problem, sigma, exponent):
    m = prior.mean.reshape(-1)
    p = prior.cov + sigma**2 * torch.eye(m.numel(), dtype=F64)
    k = prior.cov @ torch.linalg.inv(p)
    a, y, var = real_linear_system(problem, prior.event_shape)
    ak = a @ k
    mean, cov, _ = gaussian_conditional(m, p, ak, y - a @ (m - k @ m), var / exponent)
    return mean, cov


@pytest.mark.parametrize("kind", ["mala", "hmc", "pcn"])
@pytest.mark.parametrize("sigma, exponent", [(0.05, 1.0), (1.0, 0.3)])
def test_moves_keep_the_exact_target(kind, sigma, exponent):
    prior, problem = gaussian_case(n=3, m=2, sigma_y=0.2, seed=4)
    mean, cov = _target(prior, problem, sigma, exponent)
    g = torch.Generator().manual_seed(1)
    chol = torch.linalg.cholesky(cov)
    x = mean + torch.randn(N, 3, dtype=F64, generator=g) @ chol.T
    mover = Rejuvenation(kind, 30, DEFAULT_ACCEPTANCE[kind], prior, problem.log_likelihood,
                         None, g)
    st = mover.move(evaluate(prior, problem.log_likelihood, x, sigma, None), sigma, exponent)
    # the moves did move: acceptance near the target once adapted, particles changed
    assert 0.1 < sum(mover.acceptance[-10:]) / 10 < 0.95
    assert float((st.x != x).any(1).to(F64).mean()) > 0.9
    se_mean = (cov.diagonal() / N).sqrt()
    assert bool(((st.x.mean(0) - mean).abs() <= 5 * se_mean).all())
    emp = torch.cov(st.x.T)
    se_cov = ((cov**2 + torch.outer(cov.diagonal(), cov.diagonal())) / N).sqrt()
    assert bool(((emp - cov).abs() <= 5 * se_cov).all())
    # the state's denoised estimates and likelihoods belong to the moved particles
    again = evaluate(prior, problem.log_likelihood, st.x, sigma, None)
    torch.testing.assert_close(again.ell, st.ell)


def test_moves_do_not_modify_the_input_state():
    prior, problem = gaussian_case(n=3, m=2, sigma_y=0.2, seed=4)
    x = prior.sample(64, torch.Generator().manual_seed(0)).reshape(64, 3)
    st = evaluate(prior, problem.log_likelihood, x, 0.1, None)
    before = st.x.clone()
    Rejuvenation("mala", 3, 0.5, prior, problem.log_likelihood, None,
                 torch.Generator().manual_seed(2)).move(st, 0.1, 1.0)
    assert torch.equal(st.x, before)


@pytest.mark.parametrize("kind", ["mala", "hmc", "pcn"])
def test_step_adaptation_reaches_the_target_acceptance(kind):
    """On a Gaussian target the adapted step settles where the population's acceptance is
    the kernel's target (mean of the last 20 of 60 sweeps within 0.1)."""
    prior, problem = gaussian_case(n=3, m=2, sigma_y=0.2, seed=4)
    mean, cov = _target(prior, problem, 0.05, 1.0)
    g = torch.Generator().manual_seed(3)
    x = mean + torch.randn(1000, 3, dtype=F64, generator=g) @ torch.linalg.cholesky(cov).T
    target = DEFAULT_ACCEPTANCE[kind]
    mover = Rejuvenation(kind, 60, target, prior, problem.log_likelihood, None, g)
    mover.move(evaluate(prior, problem.log_likelihood, x, 0.05, None), 0.05, 1.0)
    assert abs(sum(mover.acceptance[-20:]) / 20 - target) < 0.1, mover.acceptance[-20:]
