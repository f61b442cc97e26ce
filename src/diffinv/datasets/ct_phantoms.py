r"""Synthetic CT phantoms in physical attenuation units.

Both generators return linear attenuation coefficients in **1/mm** on an ``N x N`` grid that
spans the square field of view ``[-1, 1]^2`` (normalised coordinates; ``X`` to the right,
``Y`` up, row 0 at the top, as in :mod:`diffinv.operators.ct.geometry`).  Pair them with a CT
operator whose ``pixel_size`` is in mm (the default ``pixel_size=1`` makes the field of view
``N`` mm wide); the projections are then dimensionless line integrals.  Values are built as
multiples of the attenuation of water, ``mu_water`` (0.02/mm, about 0.2/cm, water near
60-70 keV).

* :func:`shepp_logan` — the original head phantom of L. A. Shepp and B. F. Logan, "The Fourier
  reconstruction of a head section", IEEE Trans. Nucl. Sci. 21(3):21-43, 1974 (parameters as
  tabulated by Kak & Slaney, table 3.1): skull 2.0, brain 1.02, ventricles 1.0 ... times
  ``mu_water``, i.e. the original relative attenuations rather than the contrast-enhanced
  "modified" variant.
* :func:`random_ellipse_phantoms` — a water-like body ellipse with random internal ellipses
  (soft tissue, fat/air cavities, bone-like inclusions), non-negative.

Pixels are rendered with 4 x 4 (Shepp-Logan) or 2 x 2 (random) supersampling so edges carry
partial-volume values.
"""

from __future__ import annotations

import math

import torch

__all__ = ["shepp_logan", "random_ellipse_phantoms", "render_ellipses", "MU_WATER"]

MU_WATER = 0.02  # 1/mm

# (x0, y0, semi-axis along x before rotation, semi-axis along y, rotation deg, value)
_SHEPP_LOGAN = (
    (0.0, 0.0, 0.69, 0.92, 0.0, 2.0),
    (0.0, -0.0184, 0.6624, 0.874, 0.0, -0.98),
    (0.22, 0.0, 0.11, 0.31, -18.0, -0.02),
    (-0.22, 0.0, 0.16, 0.41, 18.0, -0.02),
    (0.0, 0.35, 0.21, 0.25, 0.0, 0.01),
    (0.0, 0.1, 0.046, 0.046, 0.0, 0.01),
    (0.0, -0.1, 0.046, 0.046, 0.0, 0.01),
    (-0.08, -0.605, 0.046, 0.023, 0.0, 0.01),
    (0.0, -0.605, 0.023, 0.023, 0.0, 0.01),
    (0.06, -0.605, 0.023, 0.046, 0.0, 0.01),
)


def _check_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
    return image_size


def _grid(image_size: int, oversample: int) -> tuple[torch.Tensor, torch.Tensor]:
    m = image_size * oversample
    c = (torch.arange(m, dtype=torch.float64) - (m - 1) / 2) * (2.0 / m)
    return c[None, :].expand(m, m), (-c)[:, None].expand(m, m)


def render_ellipses(params: torch.Tensor, image_size: int, oversample: int = 1) -> torch.Tensor:
    """Sum of constant-valued ellipses on the ``[-1, 1]^2`` grid.

    Parameters
    ----------
    params : torch.Tensor
        ``(n, E, 6)``: per image ``n`` and ellipse ``E``, ``(x0, y0, a, b, angle_rad, value)``
        with semi-axes ``a`` (along the rotated x axis) and ``b``; ``value`` 0 disables one.
    image_size : int
    oversample : int
        Sub-pixels per side averaged into each pixel.

    Returns
    -------
    torch.Tensor
        float64 ``(n, N, N)``.
    """
    X, Y = _grid(image_size, oversample)
    n, e, _ = params.shape
    m = image_size * oversample
    out = torch.zeros(n, m, m, dtype=torch.float64)
    for k in range(e):
        x0, y0, a, b, th, val = (params[:, k, i, None, None] for i in range(6))
        dx, dy = X[None] - x0, Y[None] - y0
        c, s = torch.cos(th), torch.sin(th)
        u = (dx * c + dy * s) / a
        v = (-dx * s + dy * c) / b
        out = out + val * ((u * u + v * v) <= 1.0)
    if oversample > 1:
        out = torch.nn.functional.avg_pool2d(out[:, None], oversample)[:, 0]
    return out


def shepp_logan(
    image_size: int, mu_water: float = MU_WATER, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The Shepp-Logan head phantom in attenuation units (1/mm).

    Parameters
    ----------
    image_size : int
        ``N``.
    mu_water : float
        Attenuation of water (1/mm); the phantom's relative values are multiplied by it
        (skull ``2 mu_water``, brain ``1.02 mu_water``).
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        ``(1, 1, N, N)`` non-negative.
    """
    _check_size(image_size)
    if not (math.isfinite(mu_water) and mu_water > 0):
        raise ValueError(f"mu_water: expected a positive finite number, got {mu_water!r}")
    p = torch.tensor(_SHEPP_LOGAN, dtype=torch.float64)
    p[:, 4] = torch.deg2rad(p[:, 4])
    img = render_ellipses(p[None], image_size, oversample=4)
    return (mu_water * img.clamp(min=0.0))[:, None].to(dtype)


def random_ellipse_phantoms(
    n: int,
    image_size: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random ellipse phantoms in attenuation units (1/mm, water = 0.02/mm).

    Each phantom is a body ellipse of water (semi-axes 0.55-0.9 of the half field of view,
    random tilt, centre within 0.08 of the middle) containing 4 to 12 random ellipses that add
    between -1.0 and +1.5 times water (cavities, soft tissue, bone-like inclusions); overlaps
    are clamped to ``[0, 3]`` times water (air to dense bone); everything stays inside the
    inscribed circle of the field of view.

    Parameters
    ----------
    n : int
        Number of phantoms.
    image_size : int
        ``N``.
    generator : torch.Generator, optional
        CPU generator; a seed reproduces the phantoms exactly.
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        ``(n, 1, N, N)`` non-negative.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    _check_size(image_size)

    def rand(*shape):
        return torch.rand(*shape, dtype=torch.float64, generator=generator)

    max_inner = 12
    body = torch.stack(
        [
            (rand(n) - 0.5) * 0.16,
            (rand(n) - 0.5) * 0.16,
            0.55 + 0.3 * rand(n),
            0.55 + 0.3 * rand(n),
            math.pi * rand(n),
            torch.ones(n, dtype=torch.float64),
        ],
        dim=-1,
    )
    count = 4 + (rand(n) * (max_inner - 3)).floor().clamp(max=max_inner - 4)
    radius = 0.5 * rand(n, max_inner).sqrt()
    phi = 2 * math.pi * rand(n, max_inner)
    a = 0.03 + 0.22 * rand(n, max_inner)
    b = 0.03 + 0.22 * rand(n, max_inner)
    value = -1.0 + 2.5 * rand(n, max_inner)
    active = torch.arange(max_inner)[None, :] < count[:, None]
    inner = torch.stack(
        [
            body[:, :1] + radius * torch.cos(phi) * body[:, 2:3] / 0.9,
            body[:, 1:2] + radius * torch.sin(phi) * body[:, 3:4] / 0.9,
            a,
            b,
            math.pi * rand(n, max_inner),
            torch.where(active, value, torch.zeros_like(value)),
        ],
        dim=-1,
    )
    params = torch.cat([body[:, None], inner], dim=1)
    img = render_ellipses(params, image_size, oversample=2).clamp(min=0.0, max=3.0)
    # keep the phantom inside the inscribed circle (fully seen by every projection)
    X, Y = _grid(image_size, 1)
    img = img * ((X * X + Y * Y) <= 1.0)
    return (MU_WATER * img)[:, None].to(dtype)
