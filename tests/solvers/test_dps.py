"""DPS against the exact posterior of a Gaussian prior with a linear-Gaussian problem.

DPS is an approximate sampler: its likelihood p(y | x_t) ~ p(y | E[x0 | x_t]) is biased, so
its samples do not converge to the exact posterior.  The tolerances below are therefore
documented bounds measured on this problem (seeded), with room for Monte-Carlo error, that a
broken implementation (no guidance: the prior; wrong sign: moves away) fails:

* the DPS mean is much closer to the exact posterior mean than the prior mean is
  (``paper`` rule: at most 35% of the prior-to-posterior distance; measured about 11-22%;
  ``likelihood`` rule: at most 75%; measured about 51-63%);
* the total posterior variance is right within a factor of 2 (measured ratios 0.76-0.94).
"""

import pytest
import torch

import diffinv
from diffinv.operators import GaussianNoise, InverseProblem, MatrixOperator, RealToComplex
from diffinv.priors import GaussianPrior


def _setup(sigma=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, m = 9, 4
    l = torch.randn(n, n, dtype=torch.float64, generator=g)
    prior = GaussianPrior(
        torch.zeros(1, 3, 3), l @ l.T / n + 0.3 * torch.eye(n, dtype=torch.float64)
    )
    op = MatrixOperator(torch.randn(m, n, dtype=torch.float64, generator=g) / 3, in_shape=(1, 3, 3))
    x = prior.sample(1, generator=g)
    noise = GaussianNoise(sigma)
    prob = InverseProblem(op, noise, noise.sample(op(x), generator=g))
    return prob, prior, prior.posterior(prob)


@pytest.mark.parametrize("sigma", [0.5, 0.2])
@pytest.mark.parametrize(
    "opts,bound", [({"guidance": "paper", "zeta": 0.5}, 0.35), ({"guidance": "likelihood"}, 0.75)]
)
def test_dps_approximates_the_exact_gaussian_posterior(sigma, opts, bound):
    prob, prior, post = _setup(sigma)
    p = diffinv.sample(
        prob, prior, "dps", n_samples=2000, steps=100, dtype=torch.float64, seed=1, **opts
    )
    s = p.samples.reshape(p.n_samples, -1)
    err = float((s.mean(0) - post.mean).norm())
    assert err < bound * float((prior.mean - post.mean).norm())
    ratio = float(torch.cov(s.T).trace() / post.cov.trace())
    assert 0.5 < ratio < 2.0
    assert p.diagnostics["nfe"] == 100 and p.diagnostics["solver"] == "dps"
    assert len(p.diagnostics["reduced_chi2"]) == 2000


def test_dps_is_deterministic_with_a_seed():
    prob, prior, _ = _setup()
    a = diffinv.sample(prob, prior, "dps", n_samples=3, steps=10, seed=7)
    b = diffinv.sample(prob, prior, "dps", n_samples=3, steps=10, seed=7)
    c = diffinv.sample(prob, prior, "dps", n_samples=3, steps=10, seed=8)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_dps_on_vectors_and_complex_images():
    g = torch.Generator().manual_seed(3)
    prior = GaussianPrior(torch.zeros(4), torch.eye(4, dtype=torch.float64))
    op = MatrixOperator(torch.randn(3, 4, dtype=torch.float64, generator=g))
    prob = InverseProblem(op, GaussianNoise(0.3), torch.randn(1, 3, generator=g))
    assert diffinv.sample(prob, prior, n_samples=2, steps=5).samples.shape == (2, 4)
    # complex image (1, 2, 2) seen by the prior as 2 real channels
    cprior = GaussianPrior(torch.zeros(2, 2, 2), torch.eye(8, dtype=torch.float64))
    a = torch.randn(5, 4, dtype=torch.complex64, generator=g)
    cop = MatrixOperator(a, in_shape=(1, 2, 2)) @ RealToComplex()
    y = torch.randn(1, 5, dtype=torch.complex64, generator=g)
    cprob = InverseProblem(cop, GaussianNoise(0.3), y, image_shape=(2, 2, 2))
    p = diffinv.sample(cprob, cprior, n_samples=2, steps=5)
    assert p.samples.shape == (2, 2, 2, 2)
    assert RealToComplex()(p.samples).shape == (2, 1, 2, 2)


def test_nan_state_raises_with_the_step_number():
    prob, prior, _ = _setup()

    def bad_prior(x, sigma):
        out = prior(x, sigma)
        return out * float("nan") if float(sigma[0]) < 1.0 else out

    bad_prior.event_shape = prior.event_shape
    with pytest.raises(FloatingPointError, match="at step"):
        diffinv.sample(prob, bad_prior, "dps", n_samples=2, steps=20, sigma_max=80.0)


def test_bad_dps_options_raise():
    prob, prior, _ = _setup()
    with pytest.raises(ValueError, match="guidance"):
        diffinv.sample(prob, prior, "dps", steps=2, guidance="magic")
    with pytest.raises(ValueError, match="eta"):
        diffinv.sample(prob, prior, "dps", steps=2, eta=2.0)
    with pytest.raises(ValueError, match="zeta"):
        diffinv.sample(prob, prior, "dps", steps=2, zeta=-1.0)
