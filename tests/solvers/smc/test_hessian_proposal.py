"""TDS with the low-rank Hessian proposal (``smc(..., proposal="hessian")``).

The proposal's weight uses its exact Gaussian density (checked against a dense
multivariate normal); the sampler is checked against the exact Gaussian posterior and
log-evidence (as in ``test_tempering.py``) and against the isotropic proposal on a sharp
likelihood, where it must keep the weights more even (its purpose).
"""

from __future__ import annotations

import pytest
import torch

from diffinv.operators.linear_gaussian import real_linear_system
from diffinv.solvers.smc.hessian_proposal import HessianProposal, default_rank
from diffinv.testing.smc_cases import (
    F64,
    check_runs_match_gaussian_posterior,
    gaussian_case,
    quiet_run,
    run,
)


@pytest.mark.parametrize("rank", [2, 6])
def test_log_ratio_is_the_exact_gaussian_density_ratio(rank):
    """``log N(x'; mu, v) - log q(x')`` against dense densities, with a truncated rank (the
    complement's precision from the smallest kept eigenvalue) and a full one."""
    _, problem = gaussian_case(n=6, m=2, sigma_y=0.1, seed=3)
    g = torch.Generator().manual_seed(0)
    prop = HessianProposal(problem, rank, generator=torch.Generator().manual_seed(1))
    x = torch.randn(5, 6, dtype=F64, generator=g)
    x0 = torch.randn(5, 6, dtype=F64, generator=g)
    mean = torch.randn(5, 6, dtype=F64, generator=g)
    grad = torch.randn(5, 6, dtype=F64, generator=g)
    var, e = 0.3, 0.7
    x_new, log_ratio = prop.draw(x, x0, torch.full((5,), 0.2, dtype=F64), mean, var, grad, e,
                                 g)
    # the Hessian of a linear-Gaussian likelihood: A^T A / sigma^2 (rank 2)
    a, _, noise_var = real_linear_system(problem, (6,))
    h = a.T @ (a / noise_var[:, None])
    lam, vec = torch.linalg.eigh(h)
    lam, vec = lam.flip(0), vec.flip(1)
    lam_rest = float(lam[rank - 1]) if rank < 6 else 0.0
    h_used = (vec[:, :rank] * lam[:rank]) @ vec[:, :rank].T
    h_used = h_used + lam_rest * (torch.eye(6, dtype=F64) - vec[:, :rank] @ vec[:, :rank].T)
    precision = torch.eye(6, dtype=F64) / var + e * h_used
    cov = torch.linalg.inv(precision)
    m = x + ((mean - x) / var + e * grad) @ cov
    q = torch.distributions.MultivariateNormal(m, covariance_matrix=0.5 * (cov + cov.T))
    base = torch.distributions.MultivariateNormal(mean, covariance_matrix=var
                                                  * torch.eye(6, dtype=F64))
    expected = base.log_prob(x_new) - q.log_prob(x_new)
    torch.testing.assert_close(log_ratio, expected, rtol=1e-6, atol=1e-6)
    assert prop.diagnostics()["hessian_updates"] == 1


def test_proposal_draws_have_the_stated_covariance():
    """20,000 draws from one particle: sample mean and covariance equal ``m`` and
    ``P^{-1}``."""
    _, problem = gaussian_case(n=4, m=2, sigma_y=0.05, seed=2)
    g = torch.Generator().manual_seed(5)
    n = 20_000
    x = torch.zeros(n, 4, dtype=F64)
    mean = torch.full((n, 4), 0.5, dtype=F64)
    prop = HessianProposal(problem, 4, generator=torch.Generator().manual_seed(1))
    var, e = 0.2, 1.0
    x_new, _ = prop.draw(x, x, torch.full((n,), 1.0 / n, dtype=F64), mean, var,
                         torch.zeros_like(x), e, g)
    a, _, noise_var = real_linear_system(problem, (4,))
    cov = torch.linalg.inv(torch.eye(4, dtype=F64) / var + a.T @ (a / noise_var[:, None]))
    exact_mean = (mean[0] / var) @ cov
    emp_cov = torch.cov(x_new.T)
    torch.testing.assert_close(x_new.mean(0), exact_mean, rtol=0, atol=4 * 0.45 / n**0.5)
    torch.testing.assert_close(emp_cov, cov, rtol=0, atol=0.06 * float(cov.diagonal().max()))


@pytest.mark.parametrize("sigma_y", [0.3, 0.05])
def test_hessian_proposal_smc_matches_the_exact_posterior_and_evidence(sigma_y):
    prior, problem = gaussian_case(n=4, m=3, sigma_y=sigma_y, seed=1)
    post = quiet_run(problem, prior, 8 * 200, 60, n_runs=8, method="tds",
                      tempering=0.5, rejuvenation="mala", twist_inflation=1.0,
                      proposal="hessian")
    d = post.diagnostics
    assert d["proposal"] == "hessian" and d["hessian_updates"] > 0
    check_runs_match_gaussian_posterior(post, prior, problem, 8)


def test_hessian_proposal_keeps_weights_even_on_a_sharp_likelihood():
    """Plain TDS (no tempering) on a sharp likelihood: the isotropic proposal's noise moves
    the twist by many nats along the observed directions, the Hessian proposal's does not."""
    prior, problem = gaussian_case(n=6, m=3, sigma_y=0.01, seed=1)
    ess = {}
    for proposal in ("isotropic", "hessian"):
        post = quiet_run(problem, prior, 256, 40, method="tds", proposal=proposal)
        hist = torch.tensor(post.diagnostics["ess_per_step"], dtype=F64)
        ess[proposal] = float(hist[5:].mean()) / 256
    assert ess["hessian"] > 2 * ess["isotropic"] and ess["hessian"] > 0.3, ess


def test_default_rank_counts_real_data_values():
    _, problem = gaussian_case(n=40, m=3, seed=0)
    assert default_rank(problem, 40) == 3 + 8
    assert default_rank(problem, 5) == 5


@pytest.mark.parametrize("options,match", [
    (dict(proposal="laplace"), "proposal"),
    (dict(proposal="hessian", proposal_rank=0), "proposal_rank"),
    (dict(proposal="hessian", proposal_rank=99), "proposal_rank: at most the 4 unknowns"),
    (dict(method="mcgdiff", proposal="hessian"), "method='tds' only"),
])
def test_bad_proposal_options_raise(options, match):
    prior, problem = gaussian_case(n=4, m=3, seed=1)
    with pytest.raises(ValueError, match=match):
        run(problem, prior, 8, 4, **options)
