"""Priors: anything with ``prior(x, sigma) -> E[x0 | x0 + sigma * eps = x]``.

Analytic priors with exact denoisers and exact linear-Gaussian posteriors:
:class:`GaussianPrior`, :class:`GaussianMixturePrior`.

Learned priors: :func:`load` (shipped priors by name, offline, or a local checkpoint),
:class:`LearnedPrior` (a UNet with EDM preconditioning, :mod:`.edm`), training in
:mod:`.training`, adapters for external checkpoints in :mod:`.adapters`.
"""

from .base import Denoiser, score_from_denoiser, sigma_per_item
from .checkpoints import LearnedPrior, list_shipped, load, load_prior, save_prior
from .gaussian import GaussianPrior
from .gaussian_mixture import GaussianMixturePrior

__all__ = [
    "Denoiser",
    "GaussianMixturePrior",
    "GaussianPrior",
    "LearnedPrior",
    "list_shipped",
    "load",
    "load_prior",
    "save_prior",
    "score_from_denoiser",
    "sigma_per_item",
]
