r"""Synthetic black-hole images: crescents, rings, Gaussian components and halos.

Images follow the interferometry convention of :mod:`diffinv.operators.interferometry`:
``(n, 1, N, N)`` tensors in Jy per pixel, row 0 north (top), column 0 east (left); the
field of view ``fov_uas`` is the image side in micro-arcseconds.  Position angles are
measured east of north (0 = bright side up/north, 90 = left/east).

The crescent is a ring of diameter ``d`` with a Gaussian radial profile of full width at
half maximum ``w`` and a brightness modulated around the ring (a "slashed" ring, as in the
M87 model families of EHT Collaboration 2019, Paper VI):

.. math::
    I(r, \theta) \propto \exp\!\left(-\frac{(r - d/2)^2}{2 s^2}\right)
    \left(1 + A\cos(\theta - \phi)\right),\qquad s = \frac{w}{2\sqrt{2\ln 2}}

with asymmetry ``A`` in [0, 1] and position angle ``phi`` of the bright side.  Each pixel is
the mean of 4 x 4 sub-pixel samples (an approximation of the pixel integral), and the
image is scaled so that it sums to ``total_flux_jy``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["crescent_image", "random_blackhole_images", "sky_grid"]

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
_OVERSAMPLE = 4
_CHUNK = 16  # images generated together (memory ~ 16 x (4N)^2 doubles per component)


def sky_grid(image_size: int, fov_uas: float, oversample: int = 1, dtype=torch.float64):
    """Sky offsets ``(east, north)`` in micro-arcseconds of (sub-)pixel centres.

    Returns two ``(N*o, N*o)`` tensors: the east offset (positive to the left) and the north
    offset (positive up) of each sample, with the image centre at 0.
    """
    n = image_size * oversample
    d = fov_uas / n
    c = ((n - 1) / 2.0 - torch.arange(n, dtype=dtype)) * d
    north, east = torch.meshgrid(c, c, indexing="ij")
    return east, north


def _check(image_size: int, fov_uas: float) -> None:
    if not (isinstance(image_size, int) and image_size > 0):
        raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
    if not (fov_uas > 0 and math.isfinite(fov_uas)):
        raise ValueError(
            f"fov_uas: expected a positive field of view in micro-arcseconds, got {fov_uas!r}"
        )


def _pixel_mean(fine: torch.Tensor, o: int) -> torch.Tensor:
    n = fine.shape[-1] // o
    return fine.reshape(*fine.shape[:-2], n, o, n, o).mean(dim=(-3, -1))


def _ring(east, north, cx, cy, diameter, width, asym, pa_rad):
    de, dn = east - cx, north - cy
    r = torch.sqrt(de**2 + dn**2)
    theta = torch.atan2(de, dn)  # east of north
    s = width * _FWHM_TO_SIGMA
    return torch.exp(-0.5 * ((r - diameter / 2) / s) ** 2) * (
        1.0 + asym * torch.cos(theta - pa_rad)
    )


def crescent_image(
    image_size: int,
    fov_uas: float,
    diameter_uas: float,
    width_uas: float,
    asymmetry: float,
    position_angle_deg: float,
    total_flux_jy: float = 0.6,
    dtype=torch.float32,
) -> torch.Tensor:
    """A centred crescent (brightness-modulated ring) in Jy per pixel.

    Parameters
    ----------
    image_size : int
        ``N``, pixels per side.
    fov_uas : float
        Field of view (image side), micro-arcseconds.
    diameter_uas : float
        Ring diameter (twice the radius of peak brightness), micro-arcseconds.
    width_uas : float
        FWHM of the Gaussian radial profile, micro-arcseconds, positive.
    asymmetry : float
        Brightness modulation ``A`` in [0, 1]: the bright side is ``(1 + A) / (1 - A)``
        times brighter than the faint side.
    position_angle_deg : float
        Position angle of the bright side, degrees east of north.
    total_flux_jy : float
        Total flux density, Jy (the image sums to it).
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    torch.Tensor
        ``(1, 1, N, N)`` image in Jy per pixel.
    """
    _check(image_size, fov_uas)
    if not (diameter_uas > 0 and width_uas > 0):
        raise ValueError("diameter_uas, width_uas: expected positive sizes in micro-arcseconds")
    if not 0.0 <= asymmetry <= 1.0:
        raise ValueError(f"asymmetry: expected a value in [0, 1], got {asymmetry!r}")
    if not total_flux_jy > 0:
        raise ValueError(f"total_flux_jy: expected a positive flux in Jy, got {total_flux_jy!r}")
    east, north = sky_grid(image_size, fov_uas, _OVERSAMPLE)
    fine = _ring(
        east, north, 0.0, 0.0, diameter_uas, width_uas, asymmetry, math.radians(position_angle_deg)
    )
    img = _pixel_mean(fine, _OVERSAMPLE)
    img = img * (total_flux_jy / img.sum())
    return img.to(dtype)[None, None]


def _u(g, lo, hi, n):
    return lo + (hi - lo) * torch.rand(n, dtype=torch.float64, generator=g)


def random_blackhole_images(
    n: int,
    image_size: int = 64,
    fov_uas: float = 160.0,
    generator: torch.Generator | None = None,
    dtype=torch.float32,
) -> torch.Tensor:
    """Random black-hole-like images (training data for priors), Jy per pixel.

    Each image is the sum of

    * a crescent (see the module notes) with diameter ~ U(35, 50) uas, width (FWHM)
      ~ U(0.15, 0.45) x diameter, asymmetry ~ U(0, 0.9), position angle ~ U(0, 360) deg,
      centre jittered by ~ N(0, 2 uas) per axis; it carries 75-95 % of the flux;
    * 0 to 3 elliptical Gaussian "hot spots" (FWHM 5-15 uas) near the ring, together up to
      15 % of the flux;
    * a faint extended halo: a round Gaussian of FWHM 60-100 uas with 2-10 % of the flux;

    scaled to a total flux ~ U(0.5, 0.7) Jy.

    Parameters
    ----------
    n : int
        Number of images.
    image_size : int
        Pixels per side.
    fov_uas : float
        Field of view, micro-arcseconds.
    generator : torch.Generator, optional
        Source of randomness (CPU generator); a seed reproduces the images.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    torch.Tensor
        ``(n, 1, N, N)`` non-negative images in Jy per pixel.
    """
    _check(image_size, fov_uas)
    if not (isinstance(n, int) and n >= 0):
        raise ValueError(f"n: expected a non-negative int, got {n!r}")
    g = generator
    east, north = sky_grid(image_size, fov_uas, _OVERSAMPLE)
    diam = _u(g, 35.0, 50.0, n)
    width = diam * _u(g, 0.15, 0.45, n)
    asym = _u(g, 0.0, 0.9, n)
    pa = _u(g, 0.0, 2 * math.pi, n)
    centre = 2.0 * torch.randn(n, 2, dtype=torch.float64, generator=g)
    ring_frac = _u(g, 0.75, 0.95, n)
    halo_frac = _u(g, 0.02, 0.10, n)
    halo_fwhm = _u(g, 60.0, 100.0, n)
    n_spots = torch.randint(0, 4, (n,), generator=g)
    flux = _u(g, 0.5, 0.7, n)
    k_max = 3
    present = (torch.arange(k_max)[None, :] < n_spots[:, None]).to(torch.float64)
    spot_w = torch.rand(n, k_max, dtype=torch.float64, generator=g) * present
    spot_w = spot_w / spot_w.sum(1, keepdim=True).clamp(min=1e-12)
    spot_w = spot_w * torch.clamp(1.0 - ring_frac - halo_frac, max=0.15)[:, None]
    ang = _u(g, 0.0, 2 * math.pi, n * k_max).reshape(n, k_max)
    rad = diam[:, None] / 2 * _u(g, 0.7, 1.3, n * k_max).reshape(n, k_max)
    sx = _u(g, 5.0, 15.0, n * k_max).reshape(n, k_max) * _FWHM_TO_SIGMA
    sy = _u(g, 5.0, 15.0, n * k_max).reshape(n, k_max) * _FWHM_TO_SIGMA
    # the fine-grid work runs in float32 unless float64 output is asked for (3x faster)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    params = (diam, width, asym, pa, centre, ring_frac, halo_frac, halo_fwhm, flux)
    diam, width, asym, pa, centre, ring_frac, halo_frac, halo_fwhm, flux = (
        t.to(work) for t in params
    )
    spot_w, ang, rad, sx, sy = (t.to(work) for t in (spot_w, ang, rad, sx, sy))
    out = torch.zeros(n, 1, image_size, image_size, dtype=work)
    e, no = east[None].to(work), north[None].to(work)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(lo + _CHUNK, n))
        cx, cy = centre[sl, 0, None, None], centre[sl, 1, None, None]
        ring = _pixel_mean(
            _ring(
                e,
                no,
                cx,
                cy,
                diam[sl, None, None],
                width[sl, None, None],
                asym[sl, None, None],
                pa[sl, None, None],
            ),
            _OVERSAMPLE,
        )
        img = ring / ring.sum((-2, -1), keepdim=True) * ring_frac[sl, None, None]
        s_h = halo_fwhm[sl, None, None] * _FWHM_TO_SIGMA
        halo = _pixel_mean(torch.exp(-0.5 * ((e - cx) ** 2 + (no - cy) ** 2) / s_h**2), _OVERSAMPLE)
        img = img + halo / halo.sum((-2, -1), keepdim=True) * halo_frac[sl, None, None]
        for j in range(k_max):
            px = cx + rad[sl, j, None, None] * torch.sin(ang[sl, j, None, None])
            py = cy + rad[sl, j, None, None] * torch.cos(ang[sl, j, None, None])
            spot = torch.exp(
                -0.5
                * (
                    ((e - px) / sx[sl, j, None, None]) ** 2
                    + ((no - py) / sy[sl, j, None, None]) ** 2
                )
            )
            spot = _pixel_mean(spot, _OVERSAMPLE)
            img = img + spot / spot.sum((-2, -1), keepdim=True) * spot_w[sl, j, None, None]
        out[sl, 0] = img / img.sum((-2, -1), keepdim=True) * flux[sl, None, None]
    return out.to(dtype)
