r"""A linear-Gaussian problem with a closed-form posterior at any image size: masked Fourier
sampling of an ``N x N`` image under a white Gaussian prior.

With the prior ``N(mu, tau^2 I)`` and single-coil Cartesian MRI (masked unitary Fourier,
Gaussian noise), the posterior is independent per real Fourier coordinate of the whitened
operator's SVD (:class:`~diffinv.solvers.smc.svd_likelihood.SVDLikelihood`): observed
coordinate ``i`` is ``N((tau^2 ybar_i + rho_i^2 mu_i) / (tau^2 + rho_i^2),
tau^2 rho_i^2 / (tau^2 + rho_i^2))``, an unobserved one the prior's ``N(mu_i, tau^2)``.  Used
by the MCGdiff exactness test (``tests/solvers/smc/test_bases.py``) and benchmark
(``benchmarks/smc_white_fourier.py``).
"""

from __future__ import annotations

import torch

from ..operators.mri import MultiCoilMRI, cartesian_mask
from ..operators.noise import GaussianNoise
from ..operators.problem import InverseProblem
from ..priors.base import sigma_per_item

__all__ = ["WhiteGaussian", "masked_fourier_problem", "white_posterior"]

F64 = torch.float64


class WhiteGaussian:
    """The prior ``N(mean, tau^2 I)`` on ``(1, h, w)`` images: its exact denoiser
    ``D(x, sigma) = (tau^2 x + sigma^2 mean) / (tau^2 + sigma^2)``, no covariance matrix."""

    def __init__(self, h: int, w: int, tau: float, mean: float):
        self.event_shape = (1, h, w)
        self.tau, self.mu = tau, mean
        self.sigma_min, self.sigma_max = 0.0, 80.0 * tau

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s2 = sigma_per_item(sigma, x).reshape(-1, 1, 1, 1) ** 2
        return (self.tau**2 * x + s2 * self.mu) / (self.tau**2 + s2)


def masked_fourier_problem(n: int, seed: int = 0, sigma: float = 0.05) -> InverseProblem:
    """Masked unitary Fourier data (4x Cartesian, 8 % centre, mask ``seed``) of a uniform
    random ``(1, 1, n, n)`` float64 image (same ``seed``), noise-free ``y``, Gaussian noise
    model of standard deviation ``sigma``."""
    op = MultiCoilMRI(mask=cartesian_mask((n, n), 4, 0.08, seed=seed))
    x = torch.rand(1, 1, n, n, dtype=F64, generator=torch.Generator().manual_seed(seed))
    return InverseProblem(op, GaussianNoise(sigma), op(x))


def white_posterior(lik, n: int, tau: float, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact posterior mean and variance ``(n*n,)`` float64 of every coordinate of ``lik``
    (an :class:`~diffinv.solvers.smc.svd_likelihood.SVDLikelihood` of the problem, full
    basis), observed ones first, for the prior ``N(mu, tau^2 I)``."""
    r = lik.rank
    mu_bar = lik.coords(torch.full((1, 1, n, n), mu, dtype=F64))[0]
    mean, var = mu_bar.clone(), torch.full_like(mu_bar, tau**2)
    mean[:r] = (tau**2 * lik.ybar + lik.rho2 * mu_bar[:r]) / (tau**2 + lik.rho2)
    var[:r] = tau**2 * lik.rho2 / (tau**2 + lik.rho2)
    return mean, var
