"""Likelihood-tempered SMC from prior draws (``smc`` with ``method="tempered"``).

References are exact: a Gaussian prior with a linear-Gaussian likelihood (``prior.posterior``
and ``log p(y)``) and a Gaussian-mixture prior (``GaussianMixturePrior.posterior``: the
posterior mode weights).  The log-evidence is checked against the spread of independent runs
(``n_runs``): the mean of 8 runs must lie within 4.8 of its standard errors (Student's t,
7 degrees of freedom, two-sided 0.999) plus the downward bias of ``log`` of an unbiased
estimate (at most half the per-run variance) of the exact value.  The nonlinear case is a
closure-phase-like likelihood (the phase of a product of two linear measurements), checked
against self-normalised importance sampling with a million prior draws.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from diffinv.operators.base import Operator
from diffinv.operators.noise import GaussianNoise
from diffinv.operators.problem import InverseProblem
from diffinv.solvers.smc.tempered import check_density_prior
from diffinv.testing import smc_cases
from diffinv.testing.checks import random_gaussian_prior
from diffinv.testing.smc_cases import F64, gaussian_case, mixture_case, run, snis_moments

TEMPERED = dict(method="tempered", rejuvenation_moves=5)


@pytest.mark.parametrize("sigma_y", [0.3, 0.01])
def test_matches_the_exact_posterior_and_evidence(sigma_y):
    prior, problem = gaussian_case(n=6, m=4, sigma_y=sigma_y, seed=1)
    mean, cov, log_z = smc_cases.tempered_reference(prior, problem)
    runs = 8
    post = run(problem, prior, runs * 250, 10, n_runs=runs, **TEMPERED)
    d = post.diagnostics
    smc_cases.assert_evidence_within_run_spread(d["log_evidence"], float(log_z))
    est_mean, est_cov, se_mean, _ = snis_moments(post)
    assert bool(((est_mean - mean).abs() <= 5 * se_mean + 1e-12).all())
    ratio = est_cov.diagonal() / cov.diagonal()
    assert bool(((ratio > 0.85) & (ratio < 1.18)).all()), ratio
    # sharper data need more levels; the path is increasing and ends at one
    path = d["tempering_path"]
    assert path[-1] == 1.0 and all(b > a for a, b in zip(path, path[1:]))
    assert d["tempering_steps"] == len(path) == len(d["ess_per_step"][0])


def test_sharper_data_take_more_levels():
    levels = []
    for sigma_y in (0.3, 0.003):
        prior, problem = gaussian_case(n=6, m=4, sigma_y=sigma_y, seed=1)
        levels.append(run(problem, prior, 400, 10, **TEMPERED).diagnostics["tempering_steps"])
    assert levels[1] >= levels[0] + 4, levels


def test_recovers_mixture_mode_weights():
    prior, problem = mixture_case()
    exact = prior.posterior(problem)
    n = 4000
    post = run(problem, prior, n, 10, **TEMPERED)
    resp = exact.responsibilities(post.samples, 0.0)
    w = post.weights
    est = (w[:, None] * resp).sum(0)
    ess = 1.0 / float((w**2).sum())
    se = torch.sqrt(exact.weights * (1 - exact.weights) / ess)
    assert bool(((est - exact.weights).abs() <= 4 * se).all()), (est, exact.weights)


class PhaseOfProduct(Operator):
    """``x (3,) -> arg((u . x + i v . x) (p . x - i q . x))``: the phase of a product of two
    complex linear measurements (one conjugated), as in a closure phase; shape ``(1,)``."""

    in_shape, out_shape = (3,), (1,)

    def __init__(self, rows: torch.Tensor):
        self.rows = rows  # (4, 3): u, v, p, q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v, p, q = (x @ self.rows.T).unbind(-1)
        return torch.atan2(v * p - u * q, u * p + v * q)[..., None]


def _phase_problem(seed=0, sigma=0.3):
    prior, g = random_gaussian_prior((3,), seed, ridge=0.3)
    op = PhaseOfProduct(torch.randn(4, 3, dtype=F64, generator=g))
    truth = prior.sample(1, g)
    noise = GaussianNoise(sigma)
    return prior, InverseProblem(op, noise, noise.sample(op(truth), g))


def test_nonlinear_likelihood_matches_importance_sampling():
    prior, problem = _phase_problem()
    g = torch.Generator().manual_seed(5)
    xs = prior.sample(1_000_000, g)
    lw = problem.log_likelihood(xs)
    w = torch.softmax(lw, 0)
    ref = (w[:, None] * xs).sum(0)
    ref_var = (w[:, None] * (xs - ref) ** 2).sum(0)
    assert 1.0 / float((w**2).sum()) > 5000  # the reference itself is accurate
    with warnings.catch_warnings():  # the mean of a two-mode posterior misfits the phase
        warnings.simplefilter("ignore", RuntimeWarning)
        post = run(problem, prior, 3000, 10, **TEMPERED)
    mean, cov, se_mean, _ = snis_moments(post)
    assert bool(((mean - ref).abs() <= 5 * se_mean + 0.02 * ref_var.sqrt()).all()), (mean, ref)
    ratio = cov.diagonal() / ref_var
    assert bool(((ratio > 0.85) & (ratio < 1.18)).all()), ratio
    d = post.diagnostics
    assert d["method"] == "tempered" and d["nfe"] == 0
    assert min(d["ess_per_step"]) >= 0.1 * 3000
    assert len(d["unique_ancestors"]) == d["n_resamples"]


def test_without_moves_the_particles_collapse():
    """The moves are what keep the particles alive (a check that can fail): the same sharp
    problem with one leapfrog step of a tiny fixed acceptance target leaves few distinct
    particles."""
    prior, problem = gaussian_case(n=6, m=4, sigma_y=0.003, seed=1)
    good = run(problem, prior, 500, 10, **TEMPERED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bad = run(problem, prior, 500, 10, method="tempered", rejuvenation="mala",
                  rejuvenation_moves=1, target_acceptance=0.001)
    distinct = [int(torch.unique(p.samples.reshape(500, -1)[:, 0]).numel()) for p in (good, bad)]
    assert distinct[0] > 400 and distinct[1] < 0.5 * distinct[0], distinct


@pytest.mark.parametrize("options, match", [
    (dict(twist_inflation=1.0), "twist_inflation"),
    (dict(rejuvenation="pcn"), "rejuvenation"),
    (dict(noise="rqmc"), "noise"),
])
def test_bad_options_raise(options, match):
    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match=match):
        run(problem, prior, 8, 4, method="tempered", **options)


def test_prior_without_a_density_is_refused():
    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match="prior: method='tempered' needs"):
        run(problem, lambda x, s: prior(x, s), 8, 4, method="tempered")
    with pytest.raises(ValueError, match="at most 4096 pixels"):
        check_density_prior(prior, 5000)


def test_auto_picks_tempered_for_a_density_prior_on_a_nonlinear_problem():
    """``method="auto"``: a prior with a density on a nonlinear likelihood runs tempered SMC
    (TDS collapsed there, issue 15); a denoiser-only prior still runs TDS, a linear-Gaussian
    problem MCGdiff, and TDS's own options (twist_inflation) keep TDS."""
    prior, problem = _phase_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert run(problem, prior, 16, 4).diagnostics["method"] == "tempered"
        denoiser_only = run(problem, lambda x, s: prior(x, s), 16, 4)
        assert denoiser_only.diagnostics["method"] == "tds"
        inflated = run(problem, prior, 16, 4, twist_inflation=1.0)
        assert inflated.diagnostics["method"] == "tds"
    linear_prior, linear_problem = gaussian_case()
    assert run(linear_problem, linear_prior, 16, 4).diagnostics["method"] == "mcgdiff"
