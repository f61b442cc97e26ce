r"""Sample-quality checks against a known Gaussian posterior (tests, benchmarks).

Samples are whitened by the exact posterior, ``z = L^{-1} (x - mu)`` with ``Sigma = L L^T``,
so a correct sampler gives ``z ~ N(0, I)``.  Two discrepancies are reported with the size of
their Monte-Carlo fluctuation for ``N`` independent exact draws in ``d`` dimensions:

* ``mean_error = ||mean(z)||_2`` with ``E[mean_error^2] = d / N``;
* ``cov_error = ||cov(z) - I||_F`` with ``E[cov_error^2] ~= (d^2 + d) / N``
  (each off-diagonal entry has variance ``1/N``, each diagonal ``2/N``).
"""

from __future__ import annotations

import math

import torch

from ..priors.gaussian import GaussianPrior

__all__ = ["random_gaussian_prior", "whitened_moment_errors"]


def whitened_moment_errors(
    samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor
) -> dict[str, float]:
    """Whitened mean and covariance errors of ``samples`` against ``N(mean, cov)``.

    Parameters
    ----------
    samples : torch.Tensor
        ``(N, *event_shape)`` draws, real.
    mean : torch.Tensor
        Exact mean, ``d = prod(event_shape)`` values.
    cov : torch.Tensor
        ``(d, d)`` exact covariance, positive definite.

    Returns
    -------
    dict
        ``mean_error``, ``cov_error`` and their Monte-Carlo scales ``mean_mc = sqrt(d/N)``,
        ``cov_mc = sqrt((d^2 + d)/N)``.
    """
    x = samples.reshape(samples.shape[0], -1).to(torch.float64).cpu()
    n, d = x.shape
    if n < 2:
        raise ValueError("samples: expected at least 2 samples")
    mu = mean.reshape(-1).to(torch.float64).cpu()
    c = cov.to(torch.float64).cpu()
    if mu.numel() != d or c.shape != (d, d):
        raise ValueError(f"mean, cov: expected {d} values and a ({d}, {d}) matrix")
    chol = torch.linalg.cholesky(c)
    z = torch.linalg.solve_triangular(chol, (x - mu).T, upper=False).T
    eye = torch.eye(d, dtype=torch.float64)
    return {
        "mean_error": float(z.mean(0).norm()),
        "cov_error": float(torch.linalg.norm(torch.cov(z.T) - eye)),
        "mean_mc": math.sqrt(d / n),
        "cov_mc": math.sqrt((d * d + d) / n),
    }


def random_gaussian_prior(
    shape: tuple[int, ...], seed: int, ridge: float = 0.1
) -> tuple[GaussianPrior, torch.Generator]:
    """A random well-conditioned :class:`GaussianPrior` on images of ``shape`` (float64).

    Mean ~ N(0, I); covariance ``B B^T / d + ridge I`` with ``B`` standard normal (drawn
    first).  Returns the prior and the generator (seeded by ``seed``) for drawing the rest of
    a test problem.
    """
    g = torch.Generator().manual_seed(seed)
    d = math.prod(shape)
    b = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = b @ b.T / d + ridge * torch.eye(d, dtype=torch.float64)
    return GaussianPrior(torch.randn(shape, generator=g, dtype=torch.float64), cov), g
