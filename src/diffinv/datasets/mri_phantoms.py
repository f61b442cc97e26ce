"""Synthetic MRI data: a complex anatomical-style phantom and simulated multi-coil scans."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..operators.mri.cartesian import MultiCoilMRI
from ..operators.mri.noise import CoilNoise

__all__ = ["shepp_logan_ellipses", "mri_phantom", "MultiCoilData", "simulate_multicoil"]

# Modified Shepp-Logan (Toft 1996): intensity, semi-axes (a, b), centre (x0, y0), angle (deg),
# in coordinates where the field of view spans [-1, 1] in x (columns) and y (rows, up).
_ELLIPSES = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def shepp_logan_ellipses(
    shape: tuple[int, int],
    dtype: torch.dtype = torch.float64,
    intensities: torch.Tensor | None = None,
) -> torch.Tensor:
    """Real modified Shepp-Logan head phantom ``(H, W)`` with values in ``[0, 1]``.

    ``intensities`` (10 values) replaces the ellipses' additive intensities (default Toft's).
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 2 or w < 2:
        raise ValueError(f"shape: expected (H, W) with sides >= 2, got {shape!r}")
    y = 1.0 - 2.0 * (torch.arange(h, dtype=torch.float64) + 0.5) / h
    x = 2.0 * (torch.arange(w, dtype=torch.float64) + 0.5) / w - 1.0
    gy, gx = torch.meshgrid(y, x, indexing="ij")
    img = torch.zeros(h, w, dtype=torch.float64)
    for i, (rho, a, b, x0, y0, deg) in enumerate(_ELLIPSES):
        if intensities is not None:
            rho = float(intensities[i])
        t = math.radians(deg)
        xr = (gx - x0) * math.cos(t) + (gy - y0) * math.sin(t)
        yr = -(gx - x0) * math.sin(t) + (gy - y0) * math.cos(t)
        img = img + rho * ((xr / a) ** 2 + (yr / b) ** 2 <= 1.0).to(torch.float64)
    return img.clamp(min=0.0).to(dtype)


def mri_phantom(
    shape: tuple[int, int] = (128, 128),
    seed: int = 0,
    max_phase: float = math.pi / 2,
    dtype: torch.dtype = torch.complex64,
    intensity_jitter: float = 0.0,
) -> torch.Tensor:
    r"""Complex head phantom: Shepp-Logan magnitude times a smooth random phase.

    .. math:: x(r) = m(r)\, e^{i \phi(r)},\quad
        \phi = c_0 + c_1 u + c_2 v + c_3 u^2 + c_4 v^2 + c_5 u v

    with ``(u, v)`` in ``[-1, 1]`` and coefficients drawn uniformly and scaled so that
    ``|phi| <= max_phase`` (a B0/receive-like background phase, as in real MR images).

    ``intensity_jitter`` > 0 multiplies the inner ellipses' intensities by independent factors
    ``1 + intensity_jitter * U(-1, 1)`` (a family of related "anatomies" for building priors).

    Returns
    -------
    torch.Tensor
        ``(1, 1, H, W)`` complex image, magnitude in ``[0, 1]`` (dimensionless).
    """
    g = torch.Generator().manual_seed(int(seed))
    c = torch.rand(6, generator=g, dtype=torch.float64) * 2 - 1
    rho = None
    if intensity_jitter > 0:
        rho = torch.tensor([e[0] for e in _ELLIPSES], dtype=torch.float64)
        u = torch.rand(len(_ELLIPSES), generator=g, dtype=torch.float64) * 2 - 1
        rho[2:] = rho[2:] * (1 + intensity_jitter * u[2:])
    mag = shepp_logan_ellipses(shape, intensities=rho)
    h, w = mag.shape
    v, u = torch.meshgrid(torch.linspace(-1, 1, h, dtype=torch.float64),
                          torch.linspace(-1, 1, w, dtype=torch.float64), indexing="ij")
    phase = c[0] + c[1] * u + c[2] * v + c[3] * u**2 + c[4] * v**2 + c[5] * u * v
    phase = phase * (max_phase / float(phase.abs().max().clamp(min=1e-12)))
    return torch.polar(mag, phase)[None, None].to(dtype)


@dataclass
class MultiCoilData:
    """A simulated Cartesian multi-coil acquisition.

    Attributes
    ----------
    kspace : torch.Tensor
        ``(1, coils, H, W)`` noisy k-space, zero where not acquired.
    operator : MultiCoilMRI
    noise : CoilNoise
        Noise model used (white, variance ``2 sigma^2`` per complex sample), masked.
    image : torch.Tensor
        ``(1, 1, H, W)`` ground truth.
    """

    kspace: torch.Tensor
    operator: MultiCoilMRI
    noise: CoilNoise
    image: torch.Tensor


def simulate_multicoil(
    image: torch.Tensor,
    coil_maps: torch.Tensor,
    mask: torch.Tensor,
    sigma: float = 0.0,
    covariance: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> MultiCoilData:
    """Simulate ``y = M F (S x) + n`` with complex Gaussian noise on the acquired samples.

    Parameters
    ----------
    image : torch.Tensor
        ``(1, 1, H, W)`` complex image.
    coil_maps : torch.Tensor
        ``(coils, H, W)``.
    mask : torch.Tensor
        ``(H, W)`` or ``(W,)`` boolean.
    sigma : float
        Noise standard deviation per real/imaginary part (white across coils); used when
        ``covariance`` is omitted.  0 gives noiseless data (a tiny variance is kept in the
        noise model so its likelihood stays defined).
    covariance : torch.Tensor, optional
        ``(coils, coils)`` coil noise covariance ``E[n n^H]``.
    generator : torch.Generator, optional
    """
    op = MultiCoilMRI(coil_maps.to(image.dtype), mask)
    noisy = sigma > 0 or covariance is not None
    if covariance is None:
        var = 2.0 * float(sigma) ** 2 if sigma > 0 else 1e-12
        covariance = torch.full((op.n_coils,), var, dtype=torch.float64)
    noise = CoilNoise(covariance, mask=op.mask)
    clean = op(image)
    y = noise.sample(clean, generator=generator) if noisy else clean
    return MultiCoilData(kspace=y, operator=op, noise=noise, image=image)
