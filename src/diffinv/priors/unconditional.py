"""Unconditional sampling from a denoiser prior (sample grids, statistics checks).

Deterministic Heun integration of the probability-flow ODE
``dx/dsigma = (x - D(x, sigma)) / sigma`` over the EDM sigma schedule (Karras et al. 2022,
Algorithm 1), started from ``x ~ N(0, sigma_max^2 I)`` (plus the prior's data offset).
"""

from __future__ import annotations

import torch

from ..schedules import karras_sigmas

__all__ = ["sample_prior"]


@torch.no_grad()
def sample_prior(
    prior,
    n: int,
    image_shape: tuple[int, ...] | None = None,
    steps: int = 24,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    batch_size: int = 64,
) -> torch.Tensor:
    """Draw ``n`` images ``(n, *image_shape)`` from ``prior`` with the Heun ODE sampler.

    ``image_shape``, ``sigma_min`` and ``sigma_max`` default to the prior's attributes
    (``event_shape``, ``sigma_min``, ``sigma_max``).  ``generator`` is a CPU generator, so a
    seed gives the same draws on every device.
    """
    shape = tuple(image_shape or getattr(prior, "event_shape", None) or ())
    if not shape:
        raise ValueError("image_shape: expected the per-image shape (the prior has none)")
    smin = float(sigma_min if sigma_min is not None else max(getattr(prior, "sigma_min", 0.002),
                                                             1e-4))
    smax = float(sigma_max if sigma_max is not None else getattr(prior, "sigma_max", 80.0))
    if device is None:
        params = getattr(prior, "parameters", None)
        device = next(params()).device if callable(params) else "cpu"
    sigmas = karras_sigmas(steps, smin, smax).to(dtype)
    offset = float(getattr(prior, "offset", 0.0))
    out = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        z = torch.randn((b, *shape), generator=generator, dtype=dtype)
        x = (offset + sigmas[0] * z).to(device)
        for i in range(steps):
            s, s_next = sigmas[i], sigmas[i + 1]
            d = (x - prior(x, s.expand(b).to(device))) / s
            x_next = x + (s_next - s) * d
            if s_next > 0:
                d2 = (x_next - prior(x_next, s_next.expand(b).to(device))) / s_next
                x_next = x + (s_next - s) * 0.5 * (d + d2)
            x = x_next
        out.append(x.cpu())
    return torch.cat(out)
