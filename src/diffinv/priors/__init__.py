"""Priors: anything with ``prior(x, sigma) -> E[x0 | x0 + sigma * eps = x]``.

Analytic priors with exact denoisers and exact linear-Gaussian posteriors:
:class:`GaussianPrior`, :class:`GaussianMixturePrior`.
"""

from .base import Denoiser, score_from_denoiser, sigma_per_item
from .gaussian import GaussianPrior
from .gaussian_mixture import GaussianMixturePrior

__all__ = [
    "Denoiser",
    "GaussianMixturePrior",
    "GaussianPrior",
    "score_from_denoiser",
    "sigma_per_item",
]
