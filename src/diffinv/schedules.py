"""Noise-level (sigma) schedules as pure functions.

Each returns a decreasing 1-D float64 tensor ``sigmas`` of length ``steps + 1`` from
``sigma_max`` down to ``sigma_min`` followed by a final ``0`` (the clean image), the
k-diffusion convention: step ``i`` moves from ``sigmas[i]`` to ``sigmas[i + 1]``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["karras_sigmas", "geometric_sigmas", "linear_sigmas", "get_schedule", "SCHEDULES"]


def _check(steps: int, sigma_min: float, sigma_max: float) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
    if not (0 < sigma_min < sigma_max and math.isfinite(sigma_max)):
        raise ValueError(
            f"sigma_min, sigma_max: expected 0 < sigma_min < sigma_max < inf, got "
            f"{sigma_min!r}, {sigma_max!r}"
        )


def _finish(s: torch.Tensor) -> torch.Tensor:
    return torch.cat([s, s.new_zeros(1)])


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    r"""The EDM schedule (Karras et al. 2022, eq. 5).

    .. math:: \sigma_i = (\sigma_{max}^{1/\rho} + \tfrac{i}{N-1}
              (\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho}))^\rho
    """
    _check(steps, sigma_min, sigma_max)
    if steps == 1:
        return _finish(torch.tensor([sigma_max], dtype=torch.float64))
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _finish((hi + ramp * (lo - hi)) ** rho)


def geometric_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0) -> torch.Tensor:
    """Log-uniform spacing (the VE-SDE schedule of Song et al. 2021)."""
    _check(steps, sigma_min, sigma_max)
    return _finish(
        torch.logspace(math.log10(sigma_max), math.log10(sigma_min), steps, dtype=torch.float64)
    )


def linear_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0) -> torch.Tensor:
    """Uniform spacing in sigma."""
    _check(steps, sigma_min, sigma_max)
    return _finish(torch.linspace(sigma_max, sigma_min, steps, dtype=torch.float64))


SCHEDULES = {"karras": karras_sigmas, "geometric": geometric_sigmas, "linear": linear_sigmas}


def get_schedule(name: str):
    """Look up a schedule function by name (``karras``, ``geometric``, ``linear``)."""
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(
            f"schedule: unknown schedule {name!r}; expected one of {sorted(SCHEDULES)}"
        ) from None
