"""Non-Cartesian k-space trajectories in radians per pixel, within ``[-pi, pi)``.

Each returns a ``(K, 2)`` float64 tensor ``omega`` whose columns are the frequencies along
image rows and columns; sigpy's coordinates are ``omega * N / (2 pi)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["radial_trajectory", "spiral_trajectory", "wrap_to_pi", "GOLDEN_ANGLE"]

GOLDEN_ANGLE = math.pi * (math.sqrt(5.0) - 1.0) / 2.0
"""Golden-angle increment for full-diameter radial spokes: 180 deg / phi = 111.246 deg
(Winkelmann et al. 2007, IEEE TMI 26:68)."""


def wrap_to_pi(omega: torch.Tensor) -> torch.Tensor:
    """Map frequencies into ``[-pi, pi)`` (exact: the transform is 2 pi periodic in omega)."""
    return torch.remainder(omega + math.pi, 2 * math.pi) - math.pi


def radial_trajectory(
    n_spokes: int, n_readout: int, golden_angle: bool = True, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Radial spokes through the k-space centre.

    Spoke ``s`` has angle ``s * 111.246 deg`` (golden angle) or ``s * 180 deg / n_spokes``
    (uniform); readout samples are at ``pi (2 t / n_readout - 1)``, ``t = 0 .. n_readout - 1``
    (so an even ``n_readout`` hits k = 0).

    Returns
    -------
    torch.Tensor
        ``(n_spokes * n_readout, 2)``, spoke-major order.
    """
    if n_spokes < 1 or n_readout < 1:
        raise ValueError(
            f"n_spokes, n_readout: expected positive integers, got {n_spokes}, {n_readout}"
        )
    step = GOLDEN_ANGLE if golden_angle else math.pi / n_spokes
    angles = torch.remainder(torch.arange(n_spokes, dtype=torch.float64) * step, math.pi)
    r = math.pi * (2.0 * torch.arange(n_readout, dtype=torch.float64) / n_readout - 1.0)
    kx = r[None, :] * torch.cos(angles)[:, None]
    ky = r[None, :] * torch.sin(angles)[:, None]
    omega = torch.stack([kx.reshape(-1), ky.reshape(-1)], dim=1)
    return wrap_to_pi(omega).to(dtype)


def spiral_trajectory(
    n_interleaves: int,
    n_samples: int,
    n_turns: float,
    density_power: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Archimedean (or variable-density) spiral interleaves from the centre outward.

    .. math:: k_l(t) = \pi\, t^{p}\, e^{i (2\pi n_{turns} t + 2\pi l / L)},\quad t \in [0, 1)

    With ``p = 1`` the radial spacing between turns of one interleave is ``pi / n_turns``;
    Nyquist for an ``N``-pixel field of view needs ``n_turns * n_interleaves >= N / 2``.
    ``p > 1`` samples the centre more densely.

    Returns
    -------
    torch.Tensor
        ``(n_interleaves * n_samples, 2)``, interleave-major order.
    """
    if n_interleaves < 1 or n_samples < 1 or not n_turns > 0 or not density_power > 0:
        raise ValueError(
            "n_interleaves, n_samples, n_turns, density_power: expected positive values"
        )
    t = torch.arange(n_samples, dtype=torch.float64) / n_samples
    radius = math.pi * t**density_power
    phase = 2 * math.pi * n_turns * t
    rot = 2 * math.pi * torch.arange(n_interleaves, dtype=torch.float64) / n_interleaves
    theta = phase[None, :] + rot[:, None]
    omega = torch.stack(
        [(radius * torch.cos(theta)).reshape(-1), (radius * torch.sin(theta)).reshape(-1)], dim=1
    )
    return wrap_to_pi(omega).to(dtype)
