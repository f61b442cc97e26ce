"""Problems and helpers shared by the SMC tests (importable through pytest's ``pythonpath``).

``gaussian_case`` builds a random Gaussian prior and a random linear-Gaussian problem;
``run`` samples with ``smc`` on a fixed noise schedule; ``snis_moments`` gives weighted
moments with their self-normalised importance-sampling standard errors; ``model_reference``
is the exact SMC target (the discretised chain's model prior times the likelihood).
"""

from __future__ import annotations

import torch

import diffinv
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.linear_gaussian import real_linear_system
from diffinv.operators.noise import GaussianNoise
from diffinv.operators.problem import InverseProblem
from diffinv.priors.gaussian import gaussian_conditional
from diffinv.schedules import karras_sigmas
from diffinv.testing.chain_reference import model_prior
from diffinv.testing.checks import random_gaussian_prior

F64 = torch.float64
SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def gaussian_case(n=3, m=2, sigma_y=0.5, seed=0, shape=None, ridge=0.3):
    """Prior ``N(mean, Q Q^T / n + ridge I)`` and ``y = A x + noise`` with random ``A`` (m, n)."""
    shape = shape or (n,)
    prior, g = random_gaussian_prior(shape, seed, ridge=ridge)
    op = MatrixOperator(torch.randn(m, n, dtype=F64, generator=g), in_shape=shape)
    noise = GaussianNoise(sigma_y)
    y = noise.sample(op(prior.sample(1, g)), g)
    return prior, InverseProblem(op, noise, y)


def mixture_case():
    """2-D prior of 3 Gaussian components and one linear measurement ``x_1 + 0.4 x_2 = 0.5``
    with noise 2: a posterior with three modes of weight 0.21-0.55."""
    from diffinv.priors import GaussianMixturePrior

    means = torch.tensor([[-4.0, 0.0], [4.0, 1.0], [0.0, 5.0]], dtype=F64)
    covs = torch.stack([torch.eye(2, dtype=F64), 0.5 * torch.eye(2, dtype=F64),
                        torch.tensor([[1.0, 0.3], [0.3, 0.6]], dtype=F64)])
    prior = GaussianMixturePrior(torch.tensor([0.5, 0.3, 0.2], dtype=F64), means, covs)
    op = MatrixOperator(torch.tensor([[1.0, 0.4]], dtype=F64))
    return prior, InverseProblem(op, GaussianNoise(2.0), torch.tensor([[0.5]], dtype=F64))


def run(problem, prior, n, steps, seed=0, **options):
    """``smc`` in float64 on the fixed schedule; the isotropic kernel unless asked otherwise
    (on Gaussian priors the Tweedie kernel, the default there, makes every weight equal)."""
    options.setdefault("kernel", "midpoint")
    return diffinv.sample(problem, prior, solver="smc", n_samples=n, steps=steps, seed=seed,
                          dtype=F64, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, **options)


def snis_moments(post):
    """Weighted mean, covariance and their SNIS standard errors (flattened samples)."""
    w = post.weights.to(F64)
    x = post.samples.reshape(post.n_samples, -1).to(F64)
    mean = (w[:, None] * x).sum(0)
    d = x - mean
    outer = d[:, :, None] * d[:, None, :]
    cov = (w[:, None, None] * outer).sum(0)
    se_mean = torch.sqrt((w[:, None] ** 2 * d**2).sum(0))
    se_cov = torch.sqrt((w[:, None, None] ** 2 * (outer - cov) ** 2).sum(0))
    return mean, cov, se_mean, se_cov


def tempered_reference(prior, problem, power: float = 1.0):
    """Exact ``(mean, cov, log_z)`` of ``prior(x) p(y | x)^power`` for a Gaussian prior and a
    linear-Gaussian ``problem``: the posterior with the noise variance divided by ``power``.

    ``log_z`` is ``log p(y)`` at ``power = 1`` (else the evidence of the inflated-noise
    model, not the tempered normaliser).
    """
    a, y, var = real_linear_system(problem, prior.event_shape)
    return gaussian_conditional(prior.mean.reshape(-1), prior.cov, a, y, var / power)


def assert_evidence_within_run_spread(log_evidences, log_z: float) -> None:
    """Assert that the mean of 8 independent runs' log-evidences matches the exact ``log_z``.

    Within 4.8 standard errors of the mean (two-sided 0.999 quantile of Student's t with 7
    degrees of freedom), allowing below it the downward bias of ``log`` of an unbiased
    estimate (at most half the per-run variance).
    """
    le = torch.tensor(log_evidences, dtype=F64)
    if le.numel() != 8:
        raise ValueError(f"log_evidences: expected 8 runs, got {le.numel()}")
    se = float(le.std()) / 8**0.5
    bias = 0.5 * float(le.var())
    assert -4.8 * se - bias <= float(le.mean()) - float(log_z) <= 4.8 * se, (le, float(log_z))


def model_reference(prior, problem, steps, kernel="midpoint"):
    """Exact target of the SMC run: model prior x likelihood; returns (mean, cov, log Z)."""
    mp = model_prior(prior, karras_sigmas(steps, SIGMA_MIN, SIGMA_MAX), kernel)
    a, y, var = real_linear_system(problem, prior.event_shape)
    return gaussian_conditional(mp.mean, mp.cov, a, y, var)
