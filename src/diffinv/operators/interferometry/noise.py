r"""Thermal noise and station-based gain corruptions of visibilities.

Thermal noise of baseline ``ij`` (standard deviation of the real and of the imaginary part,
Jy), for a 2-bit quantised signal with efficiency ``eta = 0.88``
(Thompson, Moran & Swenson 2017, ch. 6 and 8; EHT Collaboration 2019, Paper III):

.. math:: \sigma_{ij} = \frac{1}{\eta}\sqrt{\frac{\mathrm{SEFD}_i\,\mathrm{SEFD}_j}
          {2\,\Delta\nu\,t}}

Station gains multiply visibilities as ``V'_ij = g_i conj(g_j) V_ij`` with one complex gain
per station and scan, ``g = a exp(i phi)``; closure quantities are invariant to them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .observation import Observation

__all__ = ["thermal_sigma", "random_station_gains", "apply_station_gains", "add_thermal_noise"]


def thermal_sigma(sefd1, sefd2, bandwidth_hz: float, integration_s, efficiency: float = 0.88):
    """Thermal sigma (Jy, per real/imaginary part) ``sqrt(S1 S2 / (2 bw t)) / efficiency``.

    Parameters
    ----------
    sefd1, sefd2 : array_like
        SEFDs of the two stations in Jy (broadcast together).
    bandwidth_hz : float
        Recorded bandwidth, Hz.
    integration_s : float or array_like
        Integration time, s.
    efficiency : float
        Quantisation efficiency (0.88 for 2-bit sampling).

    Returns
    -------
    numpy.ndarray
        Sigmas in Jy.
    """
    if not (bandwidth_hz > 0 and efficiency > 0):
        raise ValueError("bandwidth_hz, efficiency: expected positive numbers")
    t = np.asarray(integration_s, dtype=np.float64)
    if bool((t <= 0).any()):
        raise ValueError("integration_s: expected positive integration times in seconds")
    s1 = np.asarray(sefd1, dtype=np.float64)
    s2 = np.asarray(sefd2, dtype=np.float64)
    return np.sqrt(s1 * s2 / (2.0 * bandwidth_hz * t)) / efficiency


def random_station_gains(
    obs: Observation,
    amplitude_std: float = 0.1,
    phase_std_deg: float = 180.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one complex gain per station and scan.

    ``|g| = exp(a)`` with ``a ~ N(0, amplitude_std^2)`` and phase ``~ N(0, phase_std^2)``
    (uniform phases for ``phase_std_deg >= 180``).

    Returns
    -------
    torch.Tensor
        ``(n_scans, n_stations)`` complex128 gains, scans indexed as ``obs.scan``.
    """
    if amplitude_std < 0 or phase_std_deg < 0:
        raise ValueError("amplitude_std, phase_std_deg: expected non-negative numbers")
    n_scans = int(obs.scan.max()) + 1 if len(obs) else 0
    shape = (n_scans, len(obs.stations))
    amp = torch.exp(amplitude_std * torch.randn(shape, dtype=torch.float64, generator=generator))
    if phase_std_deg >= 180.0:
        phase = (torch.rand(shape, dtype=torch.float64, generator=generator) * 2 - 1) * math.pi
    else:
        phase = math.radians(phase_std_deg) * torch.randn(
            shape, dtype=torch.float64, generator=generator
        )
    return torch.polar(amp, phase)


def apply_station_gains(obs: Observation, vis: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Corrupt visibilities: ``V'_ij = g_i conj(g_j) V_ij`` with per-scan station gains.

    Parameters
    ----------
    obs : Observation
        Gives the stations ``t1, t2`` and scan of each visibility.
    vis : torch.Tensor
        ``(..., M)`` complex visibilities (not modified).
    gains : torch.Tensor
        ``(n_scans, n_stations)`` complex gains.
    """
    g = gains.to(vis.device)
    scan, t1, t2 = obs.scan.to(vis.device), obs.t1.to(vis.device), obs.t2.to(vis.device)
    factor = g[scan, t1] * g[scan, t2].conj()
    return vis * factor.to(vis.dtype)


def add_thermal_noise(
    obs: Observation, vis: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Return ``vis`` plus complex Gaussian noise with ``obs.sigma`` per real/imag part."""
    sig = obs.sigma.to(device=vis.device, dtype=vis.real.dtype)
    noise = torch.complex(
        torch.randn(vis.shape, dtype=sig.dtype, device=vis.device, generator=generator),
        torch.randn(vis.shape, dtype=sig.dtype, device=vis.device, generator=generator),
    )
    return vis + sig * noise
