"""DAPS against exact Gaussian posteriors.

Reference: ``GaussianPrior.posterior(problem)`` (exact).  Samples are whitened by the exact
posterior (:func:`diffinv.testing.checks.whitened_moment_errors`); for ``N`` exact draws in
``d`` dimensions the whitened mean error has scale ``sqrt(d/N)`` and the covariance error
``sqrt((d^2+d)/N)`` ("MC").  Tolerance = documented bias + 3 MC.

Known bias of DAPS: it replaces ``p(x0 | x_t)`` by ``N(x0_hat, sigma_t^2 I)``, which is not
exact even for a Gaussian prior (the true conditional covariance is
``sigma^2 C (C + sigma^2 I)^-1``).  With the exact (closed-form) data step the bias decays
roughly as 1/steps; measured on this problem at 200 levels with ``ode_steps=1``: whitened
mean error 0.04-0.07, covariance error 0.1-0.15 beyond MC.  Budget: 0.1 and 0.2.
"""

from __future__ import annotations

import math

import pytest
import torch

import diffinv
from diffinv.operators import InverseProblem
from diffinv.operators.base import ComposedOperator
from diffinv.operators.elementary import (
    Diagonal,
    ElementwiseOperator,
    MatrixOperator,
    RealToComplex,
)
from diffinv.operators.noise import GaussianNoise
from diffinv.testing.checks import random_gaussian_prior as random_prior
from diffinv.testing.checks import whitened_moment_errors

DAPS_MEAN_BIAS = 0.1  # whitened, 200 levels, exact data step (see module docstring)
DAPS_COV_BIAS = 0.2
N = 2000


def real_case(seed=0, d=8, m=4, sigma=0.3):
    prior, g = random_prior((d,), seed)
    op = MatrixOperator(torch.randn(m, d, generator=g, dtype=torch.float64) / math.sqrt(d))
    y = GaussianNoise(sigma).sample(op(prior.sample(1, g)), g)
    return prior, InverseProblem(op, GaussianNoise(sigma), y)


def stacked_real_problem(problem, shape):
    """The same problem with real data: rows ``[Re A; Im A]``, data ``[Re y; Im y]``.

    An independent reference for complex data (built from ``forward`` on the canonical basis,
    not from ``to_matrix``).
    """
    d = math.prod(shape)
    cols = problem.operator(torch.eye(d, dtype=torch.float64).reshape(d, *shape)).reshape(d, -1)
    a = torch.cat([cols.real.T, cols.imag.T], dim=0)
    y = problem.y.reshape(-1)
    return InverseProblem(MatrixOperator(a, in_shape=shape), problem.noise,
                          torch.cat([y.real, y.imag])[None])


def within(samples, post, mean_bias, cov_bias):
    e = whitened_moment_errors(samples, post.mean, post.cov)
    ok = (e["mean_error"] < mean_bias + 3 * e["mean_mc"]) and (
        e["cov_error"] < cov_bias + 3 * e["cov_mc"]
    )
    return ok, e


def test_daps_exact_step_matches_gaussian_posterior():
    prior, problem = real_case()
    post = prior.posterior(problem)
    p = diffinv.sample(problem, prior, "daps", n_samples=N, steps=200, dtype=torch.float64,
                       ode_steps=1)
    ok, e = within(p.samples, post, DAPS_MEAN_BIAS, DAPS_COV_BIAS)
    assert ok, e
    assert p.diagnostics["data_step"] == "gaussian"
    assert p.diagnostics["max_cg_residual"] < 1e-8
    # the same tolerance rejects the prior itself and a DAPS with a wrong r_t (r = 3 sigma)
    ok_prior, _ = within(prior.sample(N), post, DAPS_MEAN_BIAS, DAPS_COV_BIAS)
    assert not ok_prior
    wrong = diffinv.sample(problem, prior, "daps", n_samples=N, steps=200, dtype=torch.float64,
                           ode_steps=1, r_scale=3.0)
    ok_wrong, e_wrong = within(wrong.samples, post, DAPS_MEAN_BIAS, DAPS_COV_BIAS)
    assert not ok_wrong, e_wrong


def test_daps_langevin_step_matches_gaussian_posterior():
    """Langevin data step; budget 0.3 (mean) and 0.6 (cov).

    At 100 levels the DAPS bias itself is about 0.1-0.15 (mean) and 0.1 (cov) here, and
    unadjusted Langevin adds an O(step size) bias (measured total 0.16 and 0.39).
    """
    prior, problem = real_case()
    post = prior.posterior(problem)
    p = diffinv.sample(problem, prior, "daps", n_samples=1000, steps=100, dtype=torch.float64,
                       ode_steps=1, data_step="langevin", langevin_steps=20, langevin_lr=0.3)
    ok, e = within(p.samples, post, 0.3, 0.6)
    assert ok, e
    assert p.diagnostics["data_step"] == "langevin" and p.diagnostics["lipschitz"] > 0


def test_daps_hmc_step_matches_gaussian_posterior():
    """Metropolis-adjusted HMC leaves each level's target invariant: no step-size bias, so the
    exact-step budget at 100 levels applies (measured: 0.22 / 0.27 with 10 transitions of 5
    leapfrog steps; exact step 0.20 / 0.45 on the same problem)."""
    prior, problem = real_case()
    post = prior.posterior(problem)
    p = diffinv.sample(problem, prior, "daps", n_samples=1000, steps=100, dtype=torch.float64,
                       ode_steps=1, data_step="hmc", langevin_steps=10, hmc_leapfrog=5,
                       langevin_lr=0.5)
    ok, e = within(p.samples, post, 0.2, 0.3)
    assert ok, e
    assert 0.5 < p.diagnostics["hmc_acceptance"] <= 1.0


def test_daps_hmc_warns_on_low_acceptance():
    prior, problem = real_case()
    with pytest.warns(RuntimeWarning, match="acceptance"):
        diffinv.sample(problem, prior, "daps", n_samples=8, steps=5, dtype=torch.float64,
                       data_step="hmc", langevin_steps=2, langevin_lr=1.99, lipschitz=0.0,
                       hmc_leapfrog=20)


def test_daps_image_shaped_mask():
    prior, g = random_prior((1, 3, 3), seed=2)
    mask = (torch.rand(1, 3, 3, generator=g) > 0.4).to(torch.float64)
    op = Diagonal(mask)
    y = GaussianNoise(0.2).sample(op(prior.sample(1, g)), g)
    problem = InverseProblem(op, GaussianNoise(0.2), y)
    post = prior.posterior(problem)
    p = diffinv.sample(problem, prior, "daps", n_samples=N, steps=200, dtype=torch.float64,
                       ode_steps=1)
    assert p.samples.shape == (N, 1, 3, 3)
    ok, e = within(p.samples, post, DAPS_MEAN_BIAS, DAPS_COV_BIAS)
    assert ok, e


@pytest.mark.parametrize("adapter", [True, False])
def test_daps_complex_measurements(adapter):
    """Complex data: through RealToComplex (complex image) or a complex matrix on a real image."""
    if adapter:
        prior, g = random_prior((2, 2, 2), seed=3)  # real/imag channels of a 1x2x2 image
        mat = torch.complex(torch.randn(3, 4, generator=g, dtype=torch.float64),
                            torch.randn(3, 4, generator=g, dtype=torch.float64)) / 2
        op = MatrixOperator(mat, in_shape=(1, 2, 2)) @ RealToComplex()
    else:
        prior, g = random_prior((6,), seed=4)
        mat = torch.complex(torch.randn(2, 6, generator=g, dtype=torch.float64),
                            torch.randn(2, 6, generator=g, dtype=torch.float64)) / 2
        op = MatrixOperator(mat)
    noise = GaussianNoise(0.3)
    y = noise.sample(op(prior.sample(1, g)), g)
    assert y.is_complex()
    problem = InverseProblem(op, noise, y, image_shape=prior.event_shape)
    post = prior.posterior(stacked_real_problem(problem, prior.event_shape))
    p = diffinv.sample(problem, prior, "daps", n_samples=N, steps=200, dtype=torch.float64,
                       ode_steps=1)
    ok, e = within(p.samples, post, DAPS_MEAN_BIAS, DAPS_COV_BIAS)
    assert ok, e


@pytest.mark.parametrize("data_step", ["auto", "hmc"])
def test_daps_nonlinear_operator(data_step):
    """Intensity measurements |Bx|^2 (no closed form): Langevin (auto) or HMC fits the data."""
    prior, g = random_prior((6,), seed=5)
    b = MatrixOperator(torch.randn(12, 6, generator=g, dtype=torch.float64) / math.sqrt(6))
    op = ComposedOperator(ElementwiseOperator(lambda z: z**2, "square"), b)
    noise = GaussianNoise(0.05)
    y = noise.sample(op(prior.sample(1, g)), g)
    problem = InverseProblem(op, noise, y, image_shape=(6,))
    p = diffinv.sample(problem, prior, "daps", n_samples=16, steps=40, dtype=torch.float64,
                       ode_steps=2, langevin_steps=40 if data_step == "auto" else 10,
                       langevin_lr=0.5 if data_step == "auto" else 0.1, lipschitz=2000.0,
                       data_step=data_step)
    assert p.diagnostics["data_step"] == ("langevin" if data_step == "auto" else "hmc")
    prior_fit = problem.reduced_chi2(prior.sample(64, g)).median()
    assert p.diagnostics["reduced_chi2_median"] < 0.05 * float(prior_fit)
    with pytest.raises(ValueError, match="data_step|GaussianNoise"):
        diffinv.sample(problem, prior, "daps", n_samples=2, steps=3, data_step="gaussian")


def test_daps_determinism_and_max_batch():
    prior, problem = real_case(seed=6)
    kw = dict(n_samples=10, steps=20, dtype=torch.float64, seed=3)
    a = diffinv.sample(problem, prior, "daps", **kw).samples
    b = diffinv.sample(problem, prior, "daps", **kw).samples
    assert torch.equal(a, b)
    offsets, seen = [], []

    def recording_prior(x, sigma):
        seen.append(x.shape[0])
        return prior(x, sigma)

    for attr in ("event_shape", "sigma_min", "sigma_max"):
        setattr(recording_prior, attr, getattr(prior, attr))
    c = diffinv.sample(problem, recording_prior, "daps", max_batch=4,
                       callback=lambda info: offsets.append(info["chain_offset"]), **kw)
    assert max(seen) == 4  # peak batch (hence memory) bounded by max_batch
    d = diffinv.sample(problem, prior, "daps", max_batch=4, **kw)
    assert torch.equal(c.samples, d.samples)
    assert c.samples.shape == a.shape and c.diagnostics["n_chunks"] == 3
    assert sorted(set(offsets)) == [0, 4, 8]
    assert not torch.equal(a, diffinv.sample(problem, prior, "daps", **{**kw, "seed": 4}).samples)


@pytest.mark.parametrize(
    "option",
    [{"ode_steps": 0}, {"data_step": "mala"}, {"langevin_lr": 2.5}, {"r_scale": -1.0},
     {"max_batch": 0}, {"cg_max_iter": 0}, {"lipschitz": -1.0}, {"langevin_steps": 1.5},
     {"hmc_leapfrog": 0}],
)
def test_daps_bad_options_raise(option):
    prior, problem = real_case()
    name = next(iter(option))
    with pytest.raises(ValueError, match=name):
        diffinv.sample(problem, prior, "daps", n_samples=2, steps=3, **option)


def test_daps_unknown_option_and_nan_state_raise():
    prior, problem = real_case()
    with pytest.raises(ValueError, match="ode_stpes"):
        diffinv.sample(problem, prior, "daps", n_samples=2, steps=3, ode_stpes=2)

    def broken(x, sigma):
        return prior(x, sigma) * float("nan")

    broken.event_shape = prior.event_shape
    with pytest.raises(FloatingPointError, match="step 0"):
        diffinv.sample(problem, broken, "daps", n_samples=2, steps=3)
