r"""EDM preconditioning: turn a raw network ``F`` into a denoiser prior ``D(x, sigma)``.

Karras, Aittala, Aila & Laine, "Elucidating the Design Space of Diffusion-Based Generative
Models" (NeurIPS 2022), Table 1 and section 5:

.. math::
    D(x, \sigma) = c_\text{skip}(\sigma)\, x + c_\text{out}(\sigma)\,
                   F\big(c_\text{in}(\sigma)\, x,\; c_\text{noise}(\sigma)\big)

    c_\text{skip} = \frac{\sigma_d^2}{\sigma^2 + \sigma_d^2},\quad
    c_\text{out} = \frac{\sigma \sigma_d}{\sqrt{\sigma^2 + \sigma_d^2}},\quad
    c_\text{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_d^2}},\quad
    c_\text{noise} = \tfrac14 \ln \sigma

with ``sigma_d`` the standard deviation of the (normalised) data.  The network works in a
normalised frame ``u = (x - offset) / scale``; :class:`EDMDenoiser` maps the user's frame
(physical units) to it and back, so ``D`` is a posterior mean in the user's units and
``sigma`` is a noise level in those units too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .base import sigma_per_item

__all__ = ["edm_coefficients", "EDMDenoiser", "edm_loss_weight", "param_dtype"]


def edm_coefficients(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(c_skip, c_out, c_in, c_noise)`` for a tensor of noise levels ``sigma > 0``.

    Shapes follow ``sigma``; see the module docstring for the formulas.
    """
    s2 = sigma**2
    d2 = sigma_data**2
    c_skip = d2 / (s2 + d2)
    c_out = sigma * sigma_data / torch.sqrt(s2 + d2)
    c_in = 1.0 / torch.sqrt(s2 + d2)
    c_noise = torch.log(sigma) / 4.0
    return c_skip, c_out, c_in, c_noise


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    r"""EDM loss weight ``lambda(sigma) = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2``.

    It equals ``1 / c_out^2``, so the weighted loss on ``D`` is an unweighted loss on ``F``'s
    effective target.
    """
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def param_dtype(net: object, default: torch.dtype) -> torch.dtype:
    """Floating dtype of a module's parameters (inputs are cast to it), else ``default``."""
    if isinstance(net, nn.Module):
        for p in net.parameters():
            if p.is_floating_point():
                return p.dtype
    return default


class EDMDenoiser(nn.Module):
    """A network with EDM preconditioning, usable as a prior ``D(x, sigma)``.

    Parameters
    ----------
    net : nn.Module or callable
        ``F(x_in, c_noise)`` with ``x_in`` (batch, C, H, W) and ``c_noise`` (batch,).
    sigma_data : float
        Standard deviation of the normalised data (0.5 for data in [-1, 1]).
    offset, scale : float
        The normalised frame ``u = (x - offset) / scale``.  Noise levels are in the user's
        frame: the network sees ``sigma / scale``.
    sigma_min, sigma_max : float
        Noise range (user's frame) the network was trained for; samplers read them.

    Notes
    -----
    ``D(x, 0) = x`` exactly (the limit of the formula).  Gradients flow through ``x``.
    """

    def __init__(
        self,
        net: nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        sigma_data: float = 0.5,
        offset: float = 0.0,
        scale: float = 1.0,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
    ):
        super().__init__()
        if not sigma_data > 0:
            raise ValueError(f"sigma_data: expected a positive number, got {sigma_data}")
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"scale: expected a positive finite number, got {scale}")
        self.net = net
        self.sigma_data = float(sigma_data)
        self.offset = float(offset)
        self.scale = float(scale)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)

    def normalised(self, u: torch.Tensor, sigma_u: torch.Tensor) -> torch.Tensor:
        """Denoiser in the normalised frame: ``u`` (batch, ...) and ``sigma_u`` (batch,)."""
        shape = (-1,) + (1,) * (u.ndim - 1)
        s = sigma_u.reshape(shape)
        safe = torch.where(s > 0, s, torch.ones_like(s))
        c_skip, c_out, c_in, c_noise = edm_coefficients(safe, self.sigma_data)
        net_dtype = param_dtype(self.net, u.dtype)
        f = self.net((c_in * u).to(net_dtype), c_noise.reshape(-1).to(net_dtype))
        out = c_skip * u + c_out * f.to(u.dtype)
        return torch.where(s > 0, out, u)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = sigma_per_item(sigma, x)
        u = (x - self.offset) / self.scale
        return self.offset + self.scale * self.normalised(u, s / self.scale)
