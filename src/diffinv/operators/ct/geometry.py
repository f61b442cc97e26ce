r"""CT acquisition geometry: image grid, detector coordinates and rays, in physical units.

Conventions shared by every CT operator in :mod:`diffinv.operators.ct`
-----------------------------------------------------------------------
* **Image grid.**  An image ``x[b, 0, i, j]`` of ``N x N`` pixels of side ``pixel_size``
  is centred on the rotation axis.  Pixel ``(i, j)`` has its centre at

  .. math:: X_j = (j - \tfrac{N-1}{2})\,\Delta,\qquad Y_i = (\tfrac{N-1}{2} - i)\,\Delta,

  i.e. column index grows with ``X`` (to the right) and row index grows *downwards*
  (row 0 is the top of the displayed image, ``Y`` points up).
* **Angles** are in radians.  At angle :math:`\theta` the detector axis is
  :math:`e_u = (\cos\theta, \sin\theta)` and the rays travel along
  :math:`d = (-\sin\theta, \cos\theta)`.  At :math:`\theta = 0` the rays are vertical and
  the projection sums image columns, with detector coordinate ``u = X``.
* **Detector.**  Detector cell ``k`` of ``n_detectors`` has its centre at
  :math:`u_k = (k - \tfrac{n-1}{2})\,s` with ``s = detector_spacing``; the detector centre lies
  on the central ray (through the rotation axis).  Parallel-beam scans may set another
  ``rotation_center`` ``c`` (fractional cell index of the axis): :math:`u_k = (k - c)\,s`.
* **Parallel beam.**  Ray ``(theta, k)`` is the line :math:`\{u_k e_u + t d\}`, so the data are
  the Radon transform :math:`p(\theta, u) = \int f(u e_u + t d)\,dt`.
* **Fan beam.**  The source sits at :math:`-R_{so} d` and the detector centre at
  :math:`R_{od} d`.  A flat detector is the line :math:`R_{od} d + u e_u`; a curved (equiangular)
  detector is the arc of radius :math:`R_{sd} = R_{so} + R_{od}` centred on the source, cell
  ``k`` at fan angle :math:`\gamma_k = u_k / R_{sd}` (arc length ``u_k``).  For
  :math:`R_{so} \to \infty` the fan geometry tends to the parallel one.

All lengths (pixel size, detector spacing, distances) share one unit, e.g. millimetres; with
images in attenuation per that unit (1/mm) the projections are dimensionless line integrals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "as_angles",
    "detector_positions",
    "pixel_centres",
    "parallel_rays",
    "fan_rays",
]


def as_angles(angles: torch.Tensor | Sequence[float] | int) -> torch.Tensor:
    """Validate projection angles (radians) and return them as a float64 CPU tensor.

    Parameters
    ----------
    angles : int, sequence of float or torch.Tensor
        Angles in radians, or an integer ``n`` meaning ``n`` angles evenly spaced over
        ``[0, pi)`` (use :func:`torch.linspace` yourself for a full ``2 pi`` fan-beam scan).

    Returns
    -------
    torch.Tensor
        ``(n_angles,)`` float64.
    """
    if isinstance(angles, bool):
        raise ValueError("angles: expected a number of angles or a 1-D sequence of radians")
    if isinstance(angles, int):
        if angles < 1:
            raise ValueError(f"angles: expected a positive number of angles, got {angles}")
        return torch.arange(angles, dtype=torch.float64) * (math.pi / angles)
    a = torch.as_tensor(angles, dtype=torch.float64).detach().cpu().reshape(-1).clone()
    if a.numel() == 0:
        raise ValueError("angles: expected at least one angle")
    if not bool(torch.isfinite(a).all()):
        raise ValueError("angles: contains NaN or Inf")
    return a



def detector_positions(
    n_detectors: int, detector_spacing: float, center: float | None = None
) -> torch.Tensor:
    """Detector cell centres ``u_k = (k - c) * spacing``, float64 ``(n,)``.

    ``c`` is the fractional cell index onto which the rotation axis projects, by default the
    middle of the detector, ``(n - 1) / 2``.
    """
    c = (n_detectors - 1) / 2 if center is None else float(center)
    return (torch.arange(n_detectors, dtype=torch.float64) - c) * float(detector_spacing)


def pixel_centres(image_size: int, pixel_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(X, Y)`` pixel-centre coordinates, each float64 ``(N, N)`` indexed ``[i, j]``."""
    c = (torch.arange(image_size, dtype=torch.float64) - (image_size - 1) / 2) * pixel_size
    X = c[None, :].expand(image_size, image_size)
    Y = (-c)[:, None].expand(image_size, image_size)
    return X, Y


def _axes(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray direction ``d`` and detector axis ``e_u``, each ``(n_angles, 2)``."""
    c, s = torch.cos(angles), torch.sin(angles)
    d = torch.stack([-s, c], dim=-1)
    e = torch.stack([c, s], dim=-1)
    return d, e


def parallel_rays(
    angles: torch.Tensor, n_detectors: int, detector_spacing: float, center: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays of a parallel-beam scan (``center``: see :func:`detector_positions`).

    Returns
    -------
    origin, direction : torch.Tensor
        float64 ``(n_angles * n_detectors, 2)``: a point on each ray and its unit direction,
        ordered angle-major (ray ``a * n_detectors + k``).
    """
    d, e = _axes(angles)
    u = detector_positions(n_detectors, detector_spacing, center)
    origin = u[None, :, None] * e[:, None, :]
    direction = d[:, None, :].expand_as(origin)
    return origin.reshape(-1, 2).contiguous(), direction.reshape(-1, 2).contiguous()


def fan_rays(
    angles: torch.Tensor,
    source_origin: float,
    origin_detector: float,
    n_detectors: int,
    detector_spacing: float,
    curved: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays of a fan-beam scan (flat or curved detector); see the module conventions.

    Returns
    -------
    origin, direction : torch.Tensor
        float64 ``(n_angles * n_detectors, 2)``: the source position (for every ray) and
        the unit direction from the source to the detector cell centre.
    """
    d, e = _axes(angles)
    u = detector_positions(n_detectors, detector_spacing)
    sdd = source_origin + origin_detector
    if curved:
        gamma = u / sdd
        vec = (
            torch.cos(gamma)[None, :, None] * d[:, None, :]
            + torch.sin(gamma)[None, :, None] * e[:, None, :]
        )
    else:
        vec = sdd * d[:, None, :] + u[None, :, None] * e[:, None, :]
        vec = vec / torch.linalg.vector_norm(vec, dim=-1, keepdim=True)
    source = (-source_origin * d)[:, None, :].expand_as(vec)
    return source.reshape(-1, 2).contiguous(), vec.reshape(-1, 2).contiguous()
