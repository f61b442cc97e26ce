"""Analytic priors: exact denoisers (Tweedie, Monte Carlo) and exact posteriors."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from diffinv.operators import GaussianNoise, InverseProblem, MatrixOperator, RealToComplex
from diffinv.priors import GaussianMixturePrior, GaussianPrior, score_from_denoiser

g = torch.Generator().manual_seed(11)


def _spd(n, jitter=0.2):
    l = torch.randn(n, n, dtype=torch.float64, generator=g)
    return l @ l.T / n + jitter * torch.eye(n, dtype=torch.float64)


def _gmm(n=3, k=3, shared=False):
    w = torch.rand(k, dtype=torch.float64, generator=g) + 0.2
    means = 3 * torch.randn(k, n, dtype=torch.float64, generator=g)
    covs = _spd(n) if shared else torch.stack([_spd(n) for _ in range(k)])
    return GaussianMixturePrior(w, means, covs)


def _log_p_sigma(prior, x, sigma):
    """log density of x0 + sigma*eps, built independently with torch.distributions."""
    eye = torch.eye(prior.dim, dtype=torch.float64)
    if isinstance(prior, GaussianPrior):
        return MultivariateNormal(prior.mean, prior.cov + sigma**2 * eye).log_prob(x)
    covs = prior.covs if not prior.shared_cov else prior.covs.expand(prior.n_components, -1, -1)
    comps = MultivariateNormal(prior.means, covs + sigma**2 * eye)
    return torch.logsumexp(torch.log(prior.weights) + comps.log_prob(x[:, None]), dim=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianPrior(torch.randn(4, dtype=torch.float64, generator=g), _spd(4)),
        lambda: _gmm(shared=False),
        lambda: _gmm(shared=True),
    ],
)
@pytest.mark.parametrize("sigma", [0.05, 0.7, 5.0])
def test_denoiser_satisfies_tweedie(make, sigma):
    prior = make()
    x = 2 * torch.randn(6, prior.dim, dtype=torch.float64, generator=g)
    xg = x.clone().requires_grad_(True)
    (score,) = torch.autograd.grad(_log_p_sigma(prior, xg, sigma).sum(), xg)
    torch.testing.assert_close(score_from_denoiser(prior, x, sigma), score, rtol=1e-8, atol=1e-8)


def test_gmm_denoiser_matches_monte_carlo_conditional_mean():
    prior = _gmm(n=2, k=3)
    sigma = 0.8
    x0 = prior.sample(400_000, generator=g)
    x = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    logw = -0.5 * ((x - x0) ** 2).sum(1) / sigma**2
    w = torch.softmax(logw, 0)
    mc = (w[:, None] * x0).sum(0)
    ess = 1 / (w**2).sum()
    se = math.sqrt(float(x0.var(0).max()) / float(ess))
    torch.testing.assert_close(prior(x, sigma)[0], mc, atol=5 * se, rtol=0)


def test_samples_have_the_prior_moments():
    prior = GaussianPrior(torch.arange(3.0), _spd(3))
    x = prior.sample(200_000, generator=g)
    torch.testing.assert_close(x.mean(0), prior.mean, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), prior.cov, atol=0.03, rtol=0)
    gmm = _gmm(n=2, k=3)
    xs = gmm.sample(200_000, generator=g)
    torch.testing.assert_close(
        xs.mean(0), (gmm.weights[:, None] * gmm.means).sum(0), atol=0.05, rtol=0
    )


def test_log_prob_matches_torch_distributions():
    gmm = _gmm(n=3, k=4)
    x = torch.randn(5, 3, dtype=torch.float64, generator=g)
    torch.testing.assert_close(gmm.log_prob(x), _log_p_sigma(gmm, x, 0.0))
    gp = GaussianPrior(torch.zeros(3), _spd(3))
    torch.testing.assert_close(gp.log_prob(x), _log_p_sigma(gp, x, 0.0))


def _linear_problem(n, m, sigma, complex_=False, event=None):
    a = torch.randn(m, n, dtype=torch.float64, generator=g)
    if complex_:
        a = a + 1j * torch.randn(m, n, dtype=torch.float64, generator=g)
    op = MatrixOperator(a, in_shape=event)
    y = torch.randn(1, m, dtype=a.dtype, generator=g)
    return InverseProblem(op, GaussianNoise(sigma), y), a, y


def test_gaussian_posterior_matches_information_form():
    n, m, s = 5, 3, 0.3
    prior = GaussianPrior(torch.randn(n, dtype=torch.float64, generator=g), _spd(n))
    prob, a, y = _linear_problem(n, m, s)
    post = prior.posterior(prob)
    prec = torch.linalg.inv(prior.cov) + a.T @ a / s**2
    cov = torch.linalg.inv(prec)
    mean = cov @ (torch.linalg.solve(prior.cov, prior.mean) + a.T @ y[0] / s**2)
    torch.testing.assert_close(
        post.cov, cov, rtol=1e-6, atol=1e-8
    )  # two float64 formulas, cond ~1e4
    torch.testing.assert_close(
        post.mean, mean, rtol=1e-6, atol=1e-8
    )  # two float64 formulas, cond ~1e4


def test_gmm_posterior_matches_importance_sampling():
    n, m, s = 2, 1, 0.5
    prior = _gmm(n=n, k=3)
    prob, a, y = _linear_problem(n, m, s)
    post = prior.posterior(prob)
    x0 = prior.sample(400_000, generator=g)
    logw = prob.log_likelihood(x0)
    w = torch.softmax(logw, 0)
    mc_mean = (w[:, None] * x0).sum(0)
    ess = float(1 / (w**2).sum())
    post_mean = (post.weights[:, None] * post.means).sum(0)
    se = math.sqrt(float(x0.var(0).max()) / ess)
    torch.testing.assert_close(post_mean, mc_mean, atol=5 * se, rtol=0)
    # the posterior samples reproduce the same mean
    xs = post.sample(200_000, generator=g)
    torch.testing.assert_close(xs.mean(0), post_mean, atol=0.03, rtol=0)


def test_complex_measurements_through_the_channel_adapter():
    # a real 2-channel prior image seen by a complex operator: posterior equals the one of
    # the stacked real system [Re A; Im A]
    h = w = 2
    prior = GaussianPrior(torch.zeros(2, h, w), _spd(2 * h * w))
    a = torch.randn(3, h * w, dtype=torch.complex128, generator=g)
    op = MatrixOperator(a, in_shape=(1, h, w)) @ RealToComplex()
    y = torch.randn(1, 3, dtype=torch.complex128, generator=g)
    prob = InverseProblem(op, GaussianNoise(0.2), y, image_shape=(2, h, w))
    post = prior.posterior(prob)
    ar = torch.cat([torch.cat([a.real, -a.imag], 1), torch.cat([a.imag, a.real], 1)], 0)
    yr = torch.cat([y.real[0], y.imag[0]])
    cov = torch.linalg.inv(torch.linalg.inv(prior.cov) + ar.T @ ar / 0.04)
    torch.testing.assert_close(
        post.cov, cov, rtol=1e-6, atol=1e-8
    )  # two float64 formulas, cond ~1e4
    torch.testing.assert_close(
        post.mean.reshape(-1), cov @ ar.T @ yr / 0.04, rtol=1e-6, atol=1e-8
    )  # two float64 formulas, cond ~1e4


def test_bad_prior_inputs():
    with pytest.raises(ValueError, match="cov"):
        GaussianPrior(torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match="cov"):
        GaussianPrior(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov"):
        GaussianPrior(torch.zeros(2), -torch.eye(2))
    with pytest.raises(ValueError, match="weights"):
        GaussianMixturePrior(torch.tensor([-1.0, 2.0]), torch.zeros(2, 3), torch.eye(3))
    with pytest.raises(ValueError, match="means"):
        GaussianMixturePrior(torch.ones(2), torch.zeros(3, 3), torch.eye(3))
    with pytest.raises(ValueError, match="mean"):
        GaussianPrior(torch.tensor([float("nan")]), torch.eye(1))
    prior = GaussianPrior(torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="sigma"):
        prior(torch.zeros(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="x: expected images"):
        prior(torch.zeros(4, 5), 1.0)
    prob, _, _ = _linear_problem(3, 2, 0.1)
    prob_poisson = InverseProblem(
        prob.operator, __import__("diffinv").operators.PoissonNoise(), torch.ones(1, 2)
    )
    with pytest.raises(ValueError, match="LinearOperator with GaussianNoise"):
        prior.posterior(prob_poisson)
