r"""A log-normal Gaussian-process image as a map from white noise.

.. math:: x = T(z) = \exp(\mu + R z), \qquad z \sim N(0, I_n)
          \;\Longrightarrow\; \log x \sim N(\mu, R R^T),

with ``R R^T = C`` a squared-exponential covariance of the log-image on the pixel grid,

.. math:: C_{pq} = s^2 \big(\exp(-|r_p - r_q|^2 / (2 \ell^2)) + 10^{-6} \delta_{pq}\big),

``s`` the log-brightness standard deviation (dimensionless), ``ell`` the correlation length
in pixels, and ``mu = log(m) - s^2 / 2`` so that the prior mean image is ``E[x] = m`` (units
of ``m``, e.g. Jy per pixel).  Composed with a forward model, ``y = A(T(z)) + noise``, a
standard normal prior on ``z`` (``GaussianPrior(0, I)``) is a positive, correlated image
prior: the log-normal Gaussian-process prior of Bayesian VLBI imaging (Arras, Frank, Haim,
Knollmüller, Leike, Reinecke & Enßlin 2022, "Variable structures in M87* from space, time
and frequency resolved interferometry", Nature Astronomy 6; the "standardised" or
non-centred parametrisation of NIFTy).  Samplers that need an exact prior density and exact
prior draws (``smc`` with ``method="tempered"``) run on ``z``; the images are ``T(z)``.

``R`` is dense ``(n, n)`` (``n`` pixels, at most :data:`MAX_PIXELS`).
"""

from __future__ import annotations

import math

import torch

from .base import Operator

__all__ = ["LogNormalField", "MAX_PIXELS"]

MAX_PIXELS = 4096  # dense square root of the covariance: (n, n) float64
NUGGET = 1e-6  # relative diagonal added to the covariance (numerical positive definiteness)


class LogNormalField(Operator):
    """``z (B, n) -> exp(mu + R z) (B, *image_shape)`` (module docstring); differentiable.

    Parameters
    ----------
    mean : torch.Tensor
        Prior mean image ``m`` ``image_shape`` (e.g. ``(1, H, W)``), every value positive
        (units of the image, e.g. Jy per pixel).
    log_std : float
        ``s > 0``: standard deviation of ``log x`` per pixel.
    correlation_pixels : float
        ``ell > 0``: correlation length of ``log x`` in pixels (squared-exponential
        covariance over the last two axes of ``mean``).
    """

    def __init__(self, mean: torch.Tensor, log_std: float, correlation_pixels: float):
        mean = torch.as_tensor(mean, dtype=torch.float64)
        if mean.ndim < 2:
            raise ValueError(f"mean: expected an image (..., H, W), got shape {tuple(mean.shape)}")
        if not bool(torch.isfinite(mean).all()) or not bool((mean > 0).all()):
            raise ValueError("mean: expected finite, positive values (a log-normal image is "
                             "positive)")
        for name, v in (("log_std", log_std), ("correlation_pixels", correlation_pixels)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a positive number, got {v!r}")
        n = mean.numel()
        if n > MAX_PIXELS:
            raise ValueError(f"mean: {n} pixels; LogNormalField builds a dense ({n}, {n}) "
                             f"square root and takes at most {MAX_PIXELS}")
        h, w = mean.shape[-2:]
        if n != h * w:
            raise ValueError(f"mean: expected one channel (1, H, W) or (H, W), got shape "
                             f"{tuple(mean.shape)}")
        self.image_shape = tuple(mean.shape)
        self.in_shape, self.out_shape = (n,), self.image_shape
        self.log_std, self.correlation_pixels = float(log_std), float(correlation_pixels)
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        pts = torch.stack([ii.reshape(-1), jj.reshape(-1)], 1).to(torch.float64)
        d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
        self.cov = log_std**2 * (torch.exp(-d2 / (2.0 * correlation_pixels**2))
                                 + NUGGET * torch.eye(n, dtype=torch.float64))
        evals, evecs = torch.linalg.eigh(self.cov)
        self.root = evecs * evals.clamp(min=0.0).sqrt()
        self.mu = torch.log(mean).reshape(-1) - 0.5 * log_std**2

    @property
    def latent_dim(self) -> int:
        """Number of white-noise values ``n`` (one per pixel)."""
        return self.mu.numel()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.is_complex():
            raise ValueError("z: expected real white noise, got a complex tensor")
        log_x = self.mu.to(z) + z.reshape(z.shape[0], -1) @ self.root.T.to(z)
        return torch.exp(log_x).reshape(z.shape[0], *self.image_shape)

    def to(self, device: torch.device | str) -> LogNormalField:
        """Move the tensors to ``device`` (in place); returns self."""
        for name in ("cov", "root", "mu"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __repr__(self) -> str:
        return (f"LogNormalField(image_shape={self.image_shape}, log_std={self.log_std:g}, "
                f"correlation_pixels={self.correlation_pixels:g})")
