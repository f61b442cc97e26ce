"""Priors adapted to a measured data set's units and image size."""

from __future__ import annotations

import torch

__all__ = ["ScaledPrior"]


class ScaledPrior(torch.nn.Module):
    """A denoiser in units ``scale`` times its own: ``D'(x, s) = c D(x / c, s / c)``.

    Parameters
    ----------
    prior : callable
        Denoiser ``prior(x, sigma)`` with ``image_shape``.
    scale : float
        ``c > 0``: one unit of the prior is ``c`` units of the data's image.
    image_shape : tuple of int, optional
        Event shape to announce instead of the prior's own (for fully convolutional
        networks applied at another image size).
    """

    def __init__(self, prior, scale: float, image_shape: tuple[int, ...] | None = None):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale: expected a positive number, got {scale!r}")
        self.prior, self.scale = prior, float(scale)
        self.image_shape = tuple(image_shape or prior.image_shape)
        self.event_shape = self.image_shape
        # a fully convolutional prior keeps its size limits (checked by diffinv.sample)
        for name in ("channels", "min_size", "max_size"):
            if getattr(prior, name, None) is not None:
                setattr(self, name, getattr(prior, name))
        self.sigma_min = float(getattr(prior, "sigma_min", 0.002)) * self.scale
        self.sigma_max = float(getattr(prior, "sigma_max", 80.0)) * self.scale
        self.card = dict(getattr(prior, "card", {}))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.scale * self.prior(x / self.scale, sigma / self.scale)
