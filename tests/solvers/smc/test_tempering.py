"""Tempered, rejuvenated TDS (``smc`` with ``tempering``, ``rejuvenation``, ``twist_inflation``).

References are exact: a Gaussian prior with a linear-Gaussian likelihood
(``prior.posterior`` and ``log p(y)``, a Gaussian density) and a Gaussian-mixture prior
(``GaussianMixturePrior.posterior``: the posterior mode weights).  The log-evidence is
checked against the spread of independent runs (``n_runs``): the mean of 8 runs must lie
within 4.8 of its standard errors (the two-sided 0.999 quantile of Student's t with 7
degrees of freedom; plus the small downward bias of ``log`` of an unbiased
estimate, at most half the per-run variance) of the exact value.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from diffinv.solvers.smc.tempering import conditional_ess, next_exponent
from diffinv.testing.smc_cases import (
    F64,
    assert_evidence_within_run_spread,
    gaussian_case,
    mixture_case,
    run,
    snis_moments,
    tempered_reference,
)

ALIVE = dict(method="tds", tempering=0.5, rejuvenation="mala", twist_inflation=1.0)


def _quiet_run(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return run(*args, **kwargs)


@pytest.mark.parametrize("sigma_y", [0.3, 0.05])
def test_tempered_smc_matches_the_exact_posterior_and_evidence(sigma_y):
    prior, problem = gaussian_case(n=4, m=3, sigma_y=sigma_y, seed=1)
    mean, cov, log_z = tempered_reference(prior, problem)
    runs = 8
    post = _quiet_run(problem, prior, 8 * 200, 60, n_runs=runs, **ALIVE)
    d = post.diagnostics
    assert_evidence_within_run_spread(d["log_evidence"], float(log_z))
    est_mean, est_cov, _, _ = snis_moments(post)
    std = cov.diagonal().sqrt()
    assert bool(((est_mean - mean).abs() <= 0.2 * std).all())
    ratio = est_cov.diagonal() / cov.diagonal()
    assert bool(((ratio > 0.8) & (ratio < 1.25)).all()), ratio


def test_plain_tds_evidence_is_far_off_where_tempering_fixes_it():
    """The same sharp problem without the three devices: the evidence is off by far more than
    its spread (the reason they exist)."""
    prior, problem = gaussian_case(n=4, m=3, sigma_y=0.05, seed=1)
    _, _, log_z = tempered_reference(prior, problem)
    post = _quiet_run(problem, prior, 8 * 200, 60, method="tds", n_runs=8)
    le = torch.tensor(post.diagnostics["log_evidence"], dtype=F64)
    assert float(le.mean()) - float(log_z) < -10 * float(le.std()) / math.sqrt(8)


def test_tempered_smc_recovers_mixture_mode_weights():
    """2-D, 3 components, one linear measurement: posterior mode weights within 5 se + 0.02
    (the 0.02 covers the discretised chain at 50 steps and the trapezoidal energy of the
    moves on a non-Gaussian prior)."""
    prior, problem = mixture_case()
    exact = prior.posterior(problem)
    assert float(exact.weights.min()) > 0.1
    runs = 4
    post = _quiet_run(problem, prior, runs * 500, 50, n_runs=runs, **ALIVE)
    resp = exact.responsibilities(post.samples, 0.0)
    est = torch.stack([(w[:, None] * r).sum(0) for w, r in
                       zip(post.weights.reshape(runs, -1) * runs, resp.reshape(runs, -1, 3))])
    se = est.std(0) / math.sqrt(runs)
    assert bool(((est.mean(0) - exact.weights).abs() <= 5 * se + 0.02).all()), (est, exact.weights)


def test_diagnostics_report_the_path_acceptance_and_ancestors():
    prior, problem = gaussian_case(n=4, m=3, sigma_y=0.05, seed=1)
    n = 64
    post = _quiet_run(problem, prior, n, 20, **ALIVE)
    d = post.diagnostics
    assert d["method"] == "tds"  # auto would pick mcgdiff; the options ask for tds
    path = d["tempering_path"]
    assert len(path) == len(d["ess_per_step"]) and path[-1] == 1.0
    assert all(0.0 <= lam <= 1.0 for lam in path) and min(path) < 1.0
    assert len(d["unique_ancestors"]) == d["n_resamples"] > 0
    assert all(1 <= u <= n for u in d["unique_ancestors"])
    moves = d["move_acceptance"]
    assert len(moves) == 2 * d["n_resamples"] and all(0.0 <= a <= 1.0 for a in moves)
    assert d["move_evaluations"] == len(moves)
    assert post.diagnostics["nfe"] == 20 + len(moves)


def test_pcn_rejuvenation_runs_and_adapts():
    prior, problem = gaussian_case(n=4, m=3, sigma_y=0.3, seed=1)
    post = _quiet_run(problem, prior, 200, 20, method="tds", tempering=0.5,
                      rejuvenation="pcn", rejuvenation_moves=4, twist_inflation=1.0)
    acc = post.diagnostics["move_acceptance"]
    assert post.diagnostics["rejuvenation"] == "pcn"
    assert 0.05 < sum(acc[-8:]) / 8 < 0.6  # adapted towards 0.25


@pytest.mark.parametrize("options, match", [
    ({"tempering": 1.0}, "tempering"),
    ({"tempering": 0.0}, "tempering"),
    ({"rejuvenation": "nuts"}, "rejuvenation"),
    ({"rejuvenation": "hmc", "rejuvenation_leapfrog": 0}, "rejuvenation_leapfrog"),
    ({"rejuvenation_moves": 0}, "rejuvenation_moves"),
    ({"target_acceptance": 1.0}, "target_acceptance"),
    ({"twist_inflation": -1.0}, "twist_inflation"),
    ({"max_tempering_steps": 0}, "max_tempering_steps"),
    ({"method": "mcgdiff", "tempering": 0.5}, "tds"),
])
def test_bad_tempering_options_raise(options, match):
    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match=match):
        run(problem, prior, 4, 3, **options)


# -- the CESS rule -------------------------------------------------------------------------------
def test_next_exponent_hits_the_target_cess():
    g = torch.Generator().manual_seed(0)
    ll = -5.0 * torch.rand(500, dtype=F64, generator=g) ** 2 * 100
    lw = torch.randn(500, dtype=F64, generator=g)
    lam = next_exponent([lw], ll, 0.6, base=-0.1 * ll, low=0.1)
    assert 0.1 < lam < 1.0
    assert conditional_ess(lw, (lam - 0.1) * ll) == pytest.approx(0.6, abs=1e-6)
    # a flat likelihood is reached in one increment
    assert next_exponent([lw], torch.zeros(500, dtype=F64), 0.6) == 1.0


def test_conditional_ess_limits():
    lw = torch.zeros(10, dtype=F64)
    assert conditional_ess(lw, torch.zeros(10, dtype=F64)) == pytest.approx(1.0)
    one_hot = torch.full((10,), -torch.inf, dtype=F64)
    one_hot[3] = 0.0
    assert conditional_ess(lw, one_hot) == pytest.approx(0.1)
