"""Priors: anything with ``prior(x, sigma) -> E[x0 | x0 + sigma * eps = x]``.

Analytic priors with exact denoisers and exact linear-Gaussian posteriors:
:class:`GaussianPrior`, :class:`GaussianMixturePrior`.

Learned priors: :func:`load` (shipped priors by name, offline, or a local checkpoint),
:class:`LearnedPrior` (a fully convolutional UNet with EDM preconditioning, :mod:`.edm`;
any image size, see :func:`.base.shape_mismatch`), training in :mod:`.training` (registered
generators or the user's files, one or several processes), adapters for external
checkpoints in :mod:`.adapters` and :mod:`.diffusers_adapter`.
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
