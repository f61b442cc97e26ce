"""Held-out checks of a denoiser prior: denoising PSNR and a tuned Gaussian-filter baseline.

Noise levels are given relative to the data range: ``sigma = sigma_rel * (hi - lo)`` and the
PSNR uses the peak ``hi - lo``, so ``sigma_rel = 0.05`` on data in [0, 1] is the usual
``sigma = 0.05``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

__all__ = ["psnr", "denoising_psnr", "gaussian_filter_psnr", "gaussian_blur", "SIGMAS_REL",
           "tiled", "crop_vs_whole_psnr", "noisy_copy"]

SIGMAS_REL = (0.05, 0.2, 0.5, 1.0)


def psnr(estimate: torch.Tensor, truth: torch.Tensor, peak: float) -> float:
    """``10 log10(peak^2 / MSE)`` over the whole batch, in dB."""
    mse = float(((estimate.double() - truth.double()) ** 2).mean())
    return 10.0 * math.log10(peak**2 / max(mse, 1e-300))


def noisy_copy(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``x + sigma * eps`` with ``eps`` from a CPU generator seeded ``seed`` (the noisy
    images every function here evaluates on, for ``seed + k`` at the ``k``-th sigma)."""
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)


@torch.no_grad()
def denoising_psnr(prior, x: torch.Tensor, data_range: tuple[float, float],
                   sigmas_rel=SIGMAS_REL, seed: int = 0, batch_size: int = 128) -> dict:
    """PSNR (dB) of ``prior(x + sigma eps, sigma)`` against ``x`` for each relative sigma.

    ``x`` is ``(n, C, H, W)`` on the CPU; the prior runs on its own device.
    """
    width = float(data_range[1] - data_range[0])
    params = getattr(prior, "parameters", None)
    device = next(params()).device if callable(params) else x.device
    out = {}
    for k, s_rel in enumerate(sigmas_rel):
        sigma = s_rel * width
        y = noisy_copy(x, sigma, seed + k)
        est = torch.cat([
            prior(y[i:i + batch_size].to(device),
                  torch.full((min(batch_size, len(y) - i),), sigma, device=device)).cpu()
            for i in range(0, len(y), batch_size)
        ])
        out[s_rel] = psnr(est, x, width)
    return out


def gaussian_blur(x: torch.Tensor, width: float) -> torch.Tensor:
    """Separable Gaussian filter of standard deviation ``width`` pixels (reflect padding)."""
    if width <= 0:
        return x
    r = max(1, int(math.ceil(3 * width)))
    r = min(r, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / width) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    h = F.pad(x, (r, r, r, r), mode="reflect")
    h = F.conv2d(h, k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(h, k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def gaussian_filter_psnr(x: torch.Tensor, data_range: tuple[float, float],
                         sigmas_rel=SIGMAS_REL, seed: int = 0,
                         widths=(0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)) -> dict:
    """Best PSNR over Gaussian filter widths (and a blend towards the data mean).

    The baseline is tuned on the test images themselves (an oracle choice, which favours
    the baseline): for each sigma the best of ``widths`` and of the shrinkage
    ``a * blur(y) + (1 - a) * mean`` over ``a`` in a grid is reported.
    """
    width = float(data_range[1] - data_range[0])
    mean = x.mean()
    out = {}
    for k, s_rel in enumerate(sigmas_rel):
        y = noisy_copy(x, s_rel * width, seed + k)
        best = -math.inf
        for w in widths:
            b = gaussian_blur(y, w)
            for a in (1.0, 0.9, 0.75, 0.5, 0.25, 0.1, 0.0):
                best = max(best, psnr(a * b + (1 - a) * mean, x, width))
        out[s_rel] = best
    return out


def tiled(denoiser, x: torch.Tensor, sigma: torch.Tensor, tile: int) -> torch.Tensor:
    """Apply ``denoiser(x, sigma)`` independently to non-overlapping ``tile x tile`` crops.

    ``x`` (batch, C, H, W); the last row/column of tiles is shifted inwards so every tile
    is full size (overlaps are overwritten).  This is what a crop-trained network sees
    during training; comparing it with a whole-image call measures what the whole-image
    context (image-wide normalisation, attention, padding) changes.
    """
    h, w = x.shape[-2:]
    if tile > min(h, w):
        raise ValueError(f"tile: {tile} is larger than the image {(h, w)}")
    out = torch.empty_like(x)
    rows = sorted({min(i, h - tile) for i in range(0, h, tile)})
    cols = sorted({min(j, w - tile) for j in range(0, w, tile)})
    for i in rows:
        for j in cols:
            out[..., i:i + tile, j:j + tile] = denoiser(x[..., i:i + tile, j:j + tile], sigma)
    return out


@torch.no_grad()
def crop_vs_whole_psnr(prior, x: torch.Tensor, data_range: tuple[float, float], crop: int,
                       sigmas_rel=SIGMAS_REL, seed: int = 0) -> dict:
    """Denoising PSNR (dB) of whole images against the same images cut into training crops.

    Returns ``{sigma_rel: {"crop": dB, "whole": dB, "loss": crop - whole}}`` over the
    same pixels of ``x`` (n, C, H, W); a positive ``loss`` means whole-image inference is
    worse than denoising crop by crop at the training size.
    """
    width = float(data_range[1] - data_range[0])
    out = {}
    for k, s_rel in enumerate(sigmas_rel):
        sigma = s_rel * width
        y = noisy_copy(x, sigma, seed + k)
        s = torch.full((x.shape[0],), sigma)
        p_crop = psnr(tiled(prior, y, s, crop), x, width)
        p_whole = psnr(prior(y, s), x, width)
        out[s_rel] = {"crop": p_crop, "whole": p_whole, "loss": p_crop - p_whole}
    return out
