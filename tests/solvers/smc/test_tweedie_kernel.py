"""The Tweedie-covariance SMC kernel (``smc`` with ``kernel="tweedie"``) against exact references.

For a Gaussian prior the kernel is the exact backward transition and the local potential is
the exact ``p(y | x_sigma)``, so (i) the chain's output is the prior at any number of steps,
(ii) after the first step every incremental weight is the same (the ESS never moves) and
(iii) the particles are exact posterior draws: moments within Monte-Carlo error of
``prior.posterior``.
"""

from __future__ import annotations

import math

import pytest
import torch

import diffinv
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.noise import GaussianNoise
from diffinv.operators.problem import InverseProblem
from diffinv.priors import GaussianMixturePrior, GaussianPrior
from diffinv.schedules import karras_sigmas
from diffinv.solvers.smc.runner import AUTO_TWEEDIE_MAX_BYTES, auto_kernel
from diffinv.solvers.smc.tweedie_kernel import MAX_TWEEDIE_DIM, denoiser_jacobian
from diffinv.testing import smc_cases
from diffinv.testing.chain_reference import model_prior
from diffinv.testing.smc_cases import F64, SIGMA_MAX, SIGMA_MIN


def gaussian_case(n=4, m=2, sigma_y=0.3, seed=0):
    return smc_cases.gaussian_case(n, m, sigma_y, seed, ridge=0.2)


def run(problem, prior, n, steps, seed=0, **options):
    return smc_cases.run(problem, prior, n, steps, seed, method="mcgdiff", kernel="tweedie",
                         **options)


def test_chain_output_is_the_prior_at_few_steps():
    """The exact transition leaves only the start's gap (relative size sigma_max^-2)."""
    prior, _ = gaussian_case()
    sigmas = karras_sigmas(10, SIGMA_MIN, SIGMA_MAX)
    tw = model_prior(prior, sigmas, "tweedie")
    mid = model_prior(prior, sigmas, "midpoint")
    scale = float(prior.cov.diag().max())
    assert float((tw.cov - prior.cov).abs().max()) < 1e-3 * scale
    assert float((tw.mean - prior.mean).abs().max()) < 1e-3
    assert float((mid.cov - prior.cov).abs().max()) > 1e-2 * scale  # the test can fail


def test_gaussian_prior_is_perfectly_adapted_and_exact():
    prior, problem = gaussian_case()
    n, steps = 4000, 12
    post = run(problem, prior, n, steps, ess_threshold=0.0, potential="local")
    d = post.diagnostics
    assert d["kernel"] == "tweedie" and d["n_resamples"] == 0
    # the first weight is p(y | x_{sigma_max}), which varies a little between particles;
    # after it every incremental weight is the same, so the ESS never changes again
    ess = torch.tensor(d["ess_per_step"], dtype=F64)
    assert float(ess[0]) > 0.99 * n
    assert float((ess[:-1] - ess[0]).abs().max()) < 1e-9 * n
    # the last step is the deterministic x0 = D(x, sigma_min) (drops Cov(x0 | x_sigma_min))
    assert abs(float(ess[-1] - ess[0])) < 1e-6 * n
    exact = prior.posterior(problem)
    x = post.samples.reshape(n, -1)
    mean, cov = x.mean(0), torch.cov(x.T)
    std = exact.cov.diag().sqrt()
    assert bool(((mean - exact.mean.reshape(-1)).abs() <= 5 * std / math.sqrt(n)).all())
    # var estimate of a Gaussian: se = var * sqrt(2 / (n - 1))
    ex_var = exact.cov.diag()
    assert bool(((cov.diag() - ex_var).abs() <= 5 * ex_var * math.sqrt(2 / (n - 1))).all())
    assert abs(d["log_evidence"] - float(exact_log_evidence(prior, problem))) < 1e-3


def exact_log_evidence(prior, problem):
    a = problem.operator.to_matrix(dtype=F64)
    var = problem.noise.sigma**2
    cov = a @ prior.cov @ a.T + var * torch.eye(a.shape[0], dtype=F64)
    y = problem.y.reshape(-1)
    return torch.distributions.MultivariateNormal(a @ prior.mean, cov).log_prob(y)


def test_autograd_jacobian_gives_the_same_run():
    """A prior without ``denoiser_jacobian`` takes the autograd path: same particles."""
    prior, problem = gaussian_case(n=3)
    a = run(problem, prior, 64, 8, potential="local")
    b = run(problem, lambda x, s: prior(x, s), 64, 8, potential="local", max_batch=10)
    assert torch.allclose(a.samples, b.samples, atol=1e-9)
    assert torch.allclose(a.weights, b.weights, atol=1e-9)
    assert a.diagnostics["backward_passes"] == 0 and b.diagnostics["backward_passes"] == 7 * 3


@pytest.mark.parametrize("potential", ["adaptive", "flat"])
def test_other_potentials_target_the_same_posterior(potential):
    """Not adapted (weights vary), but the weighted particles still match the posterior."""
    prior, problem = gaussian_case(seed=1)
    n = 3000
    post = run(problem, prior, n, 20, ess_threshold=0.0, potential=potential)
    w = post.weights
    x = post.samples.reshape(n, -1)
    mean = (w[:, None] * x).sum(0)
    se = torch.sqrt((w[:, None] ** 2 * (x - mean) ** 2).sum(0))
    assert post.diagnostics["ess_final"] < n * 0.999  # genuinely weighted
    assert bool(((mean - prior.posterior(problem).mean.reshape(-1)).abs() <= 5 * se).all())


def test_mixture_jacobian_matches_autograd():
    g = torch.Generator().manual_seed(3)
    means = torch.randn(4, 1, 3, dtype=F64, generator=g) * 3
    q = torch.randn(4, 3, 3, dtype=F64, generator=g)
    prior = GaussianMixturePrior(torch.rand(4, dtype=F64, generator=g) + 0.1, means,
                                 q @ q.transpose(1, 2) + 0.1 * torch.eye(3, dtype=F64))
    x = torch.randn(5, 1, 3, dtype=F64, generator=g) * 3
    for sigma in (0.3, 2.0):
        x0, jac = prior.denoiser_jacobian(x, sigma)
        x1, ref = denoiser_jacobian(lambda t, s: prior(t, s), x, sigma, None)
        assert torch.allclose(x0, x1) and torch.allclose(jac, ref, atol=1e-10)
        assert float(torch.linalg.eigvalsh(jac).min()) > -1e-12  # Cov(x0 | x) / sigma^2


def test_errors():
    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match="tweedie"):
        diffinv.sample(problem, prior, solver="smc", n_samples=4, steps=3, method="tds",
                       kernel="tweedie")
    big = MAX_TWEEDIE_DIM + 1
    with pytest.raises(ValueError, match="kernel"):
        denoiser_jacobian(lambda x, s: x, torch.zeros(2, big, dtype=F64), 1.0, None)


def test_auto_picks_the_tweedie_kernel_where_the_jacobian_is_cheap():
    prior, problem = gaussian_case()
    post = diffinv.sample(problem, prior, solver="smc", n_samples=8, steps=4, seed=0)
    assert (post.diagnostics["kernel"], post.diagnostics["potential"]) == ("tweedie", "local")
    g = torch.Generator().manual_seed(0)
    big = GaussianPrior(torch.zeros(100, dtype=F64), torch.eye(100, dtype=F64))
    op = MatrixOperator(torch.randn(3, 100, dtype=F64, generator=g))
    prob = InverseProblem(op, GaussianNoise(0.5), torch.zeros(1, 3, dtype=F64))
    post = diffinv.sample(prob, lambda x, s: big(x, s), solver="smc", n_samples=8, steps=4,
                          seed=0)  # no analytic Jacobian and 100 > 64 unknowns
    assert (post.diagnostics["kernel"], post.diagnostics["potential"]) == ("midpoint",
                                                                          "local")
    post = diffinv.sample(prob, big, solver="smc", n_samples=8, steps=4, seed=0)
    assert post.diagnostics["kernel"] == "tweedie"
    many = AUTO_TWEEDIE_MAX_BYTES // (8 * 100 * 100) + 1  # particles past the memory bound
    assert auto_kernel(big, 100, many) == "midpoint" and auto_kernel(big, 100, 8) == "tweedie"


def test_threshold_one_resamples_every_step_even_with_equal_weights():
    prior, problem = gaussian_case()
    post = run(problem, prior, 16, 6, ess_threshold=1.0)
    assert post.diagnostics["n_resamples"] == 5  # all but the deterministic last step


def test_analytic_jacobians_with_per_item_noise_levels():
    g = torch.Generator().manual_seed(4)
    prior, _ = gaussian_case(n=3)
    mix = GaussianMixturePrior(torch.tensor([0.3, 0.7], dtype=F64),
                               torch.randn(2, 3, dtype=F64, generator=g) * 2,
                               torch.eye(3, dtype=F64) * 0.5)
    x = torch.randn(4, 3, dtype=F64, generator=g)
    sigma = torch.tensor([0.1, 0.5, 2.0, 0.5], dtype=F64)
    for p in (prior, mix):
        x0, jac = p.denoiser_jacobian(x, sigma)
        ref = torch.stack([
            torch.autograd.functional.jacobian(lambda t, s=s, p=p: p(t[None], s[None])[0], xi)
            for xi, s in zip(x, sigma)])
        assert torch.allclose(jac, ref, atol=1e-10) and torch.allclose(x0, p(x, sigma))
