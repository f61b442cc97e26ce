r"""Resolution-independent building blocks of the anatomical phantoms.

Every shape and texture is defined in normalised coordinates on the field of view
``[-1, 1]^2`` (``x`` to the right, ``y`` up, row 0 at the top, pixel centres at
``-1 + (i + 1/2) 2/N``) and all random numbers are drawn independently of the image size,
so the same generator state renders the *same* phantom at any ``N`` (only the sampling
changes).  Used by :mod:`diffinv.datasets.ct_anatomy` and :mod:`diffinv.datasets.mri_anatomy`.

* :class:`Draw` — uniform/normal draws from one ``torch.Generator`` (float64).
* :func:`random_field_coefficients` / :func:`render_field` — band-limited Gaussian random
  fields as a truncated Fourier series
  :math:`f(x, y) = \mathrm{Re} \sum_{|k_x|, |k_y| \le K} c_k e^{i \pi (k_x x + k_y y)}`
  with :math:`c_k \sim \mathcal{CN}(0, a_k^2)`, :math:`a_k \propto (1 + |k|^2/k_0^2)^{-s/2}
  e^{-|k|^2 / (2 k_c^2)}` (``k`` in cycles per field of view width 2), normalised to unit
  expected variance; evaluated exactly at the pixel centres (no FFT grid, no aliasing of
  the coefficients).
* :func:`blob` — soft (partial-volume) masks of ellipses whose radius is perturbed by a few
  low angular harmonics.
* :func:`random_crops` — crops of whole images rendered at random sizes (scale
  augmentation for crop-trained priors).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["Draw", "Canvas", "grid", "random_field_coefficients", "render_field", "blob",
           "blob_radius", "soft_step", "random_crops", "check_count_size"]

F64 = torch.float64


def check_count_size(n: int, image_size: int, min_size: int = 8) -> None:
    """``ValueError`` naming ``n`` or ``image_size`` when not an int >= 1 / >= ``min_size``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < min_size:
        raise ValueError(f"image_size: expected an int >= {min_size}, got {image_size!r}")


class Draw:
    """Random draws (float64) from one CPU generator."""

    def __init__(self, generator: torch.Generator | None):
        self.g = generator

    def uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        """Uniform on ``[lo, hi)``; a 0-d tensor when no shape is given."""
        return lo + (hi - lo) * torch.rand(shape, generator=self.g, dtype=F64)

    def normal(self, *shape: int) -> torch.Tensor:
        """Standard normal draws of ``shape``."""
        return torch.randn(shape, generator=self.g, dtype=F64)

    def choice(self, probs: tuple[float, ...], n: int) -> torch.Tensor:
        """``n`` category indices drawn with probabilities ``probs``."""
        p = torch.tensor(probs, dtype=F64)
        return torch.multinomial(p / p.sum(), n, replacement=True, generator=self.g)


def grid(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(X, Y)``, each ``(N, N)`` float64 (``Y`` up)."""
    c = (torch.arange(image_size, dtype=F64) + 0.5) * (2.0 / image_size) - 1.0
    return c[None, :].expand(image_size, image_size), (-c)[:, None].expand(image_size,
                                                                          image_size)


def random_field_coefficients(draw: Draw, n: int, kmax: int, k0: float, slope: float,
                              kc: float) -> torch.Tensor:
    """Complex coefficients ``(n, 2K+1, 2K+1)`` (rows ``k_y``, columns ``k_x``) of unit
    expected variance; see the module docstring for the spectrum."""
    k = torch.arange(-kmax, kmax + 1, dtype=F64)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    amp = (1 + k2 / k0**2) ** (-slope / 2) * torch.exp(-k2 / (2 * kc**2))
    amp[kmax, kmax] = 0.0  # zero mean
    amp = amp / torch.sqrt((amp**2).sum() / 2)  # Var Re f = sum a^2 / 2 = 1
    z = torch.complex(draw.normal(n, 2 * kmax + 1, 2 * kmax + 1),
                      draw.normal(n, 2 * kmax + 1, 2 * kmax + 1)) / math.sqrt(2)
    return z * amp


def render_field(coef: torch.Tensor, image_size: int) -> torch.Tensor:
    """Evaluate the Fourier series ``coef`` (n, 2K+1, 2K+1) at the pixel centres: (n, N, N)."""
    kmax = (coef.shape[-1] - 1) // 2
    k = torch.arange(-kmax, kmax + 1, dtype=F64)
    c = (torch.arange(image_size, dtype=F64) + 0.5) * (2.0 / image_size) - 1.0
    ex = torch.polar(torch.ones(image_size, 2 * kmax + 1, dtype=F64), math.pi * c[:, None] * k)
    ey = torch.polar(torch.ones(image_size, 2 * kmax + 1, dtype=F64),
                     math.pi * (-c)[:, None] * k)
    return (ey @ coef @ ex.T).real


def blob_radius(X: torch.Tensor, Y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor,
                harmonics: torch.Tensor | None = None) -> torch.Tensor:
    r"""Relative radius ``q = rho / r(phi)`` ``(n, N, N)`` of perturbed ellipses (< 1 inside).

    A point at rotated, scaled position ``(u, v) = R(-theta)(p - c) / (a, b)`` with polar
    coordinates ``(rho, phi)`` has :math:`q = \rho / r(\phi)`, :math:`r(\phi) = 1 + \sum_m
    \alpha_m \cos m\phi + \beta_m \sin m\phi`.

    Parameters
    ----------
    X, Y : (N, N) pixel-centre coordinates from :func:`grid`.
    cx, cy, a, b, theta : (n,) centres, semi-axes (normalised units) and rotations (rad).
    harmonics : (n, M, 2), optional
        ``(alpha_m, beta_m)`` for ``m = 2 .. M + 1`` (keep ``sum |.|`` well below 1).
    """
    dx, dy = X[None] - cx[:, None, None], Y[None] - cy[:, None, None]
    ct, st = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    u = (dx * ct + dy * st) / a[:, None, None]
    v = (-dx * st + dy * ct) / b[:, None, None]
    rho = torch.sqrt(u * u + v * v)
    r = torch.ones_like(rho)
    if harmonics is not None and harmonics.shape[1] > 0:
        phi = torch.atan2(v, u)
        for m in range(harmonics.shape[1]):
            r = r + (harmonics[:, m, 0, None, None] * torch.cos((m + 2) * phi)
                     + harmonics[:, m, 1, None, None] * torch.sin((m + 2) * phi))
    return rho / r


def soft_step(t: torch.Tensor, image_size: int) -> torch.Tensor:
    """Partial-volume indicator of ``t > 0`` for ``t`` a distance in normalised units: a
    linear ramp one pixel (``2 / N``) wide, values in [0, 1]."""
    return (0.5 + t * (image_size / 2.0)).clamp(0.0, 1.0)


def blob(X: torch.Tensor, Y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
         a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor,
         harmonics: torch.Tensor | None = None) -> torch.Tensor:
    """Soft masks ``(n, N, N)`` in [0, 1] of the perturbed ellipses of :func:`blob_radius`;
    the edge ramp runs across the approximate distance ``(1 - q) sqrt(a b)`` to the boundary."""
    q = blob_radius(X, Y, cx, cy, a, b, theta, harmonics)
    return soft_step((1 - q) * torch.sqrt(a * b)[:, None, None], X.shape[-1])


def random_crops(render: Callable[[int, int, torch.Generator | None], torch.Tensor], n: int,
                 crop: int, generator: torch.Generator | None, sizes: tuple[int, int],
                 crops_per_image: int = 8) -> torch.Tensor:
    """``n`` random ``crop x crop`` crops of whole images rendered at random sizes.

    For each group of ``crops_per_image`` crops, one image is rendered by
    ``render(1, size, generator)`` with ``size`` uniform in ``[sizes[0], sizes[1]]`` (the
    same field of view at a random pixel size), then crop corners are drawn uniformly.

    Returns
    -------
    torch.Tensor
        ``(n, C, crop, crop)`` with the dtype of ``render``'s output.
    """
    lo, hi = int(sizes[0]), int(sizes[1])
    if not crop <= lo <= hi:
        raise ValueError(f"sizes: expected crop {crop} <= min size <= max size, got {sizes}")
    out = []
    while len(out) < n:
        size = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        img = render(1, size, generator)[0]
        corners = torch.randint(0, size - crop + 1, (crops_per_image, 2), generator=generator)
        for i, j in corners.tolist():
            if len(out) < n:
                out.append(img[:, i:i + crop, j:j + crop])
    return torch.stack(out)


class Canvas:
    """One ``N x N`` float64 image painted shape by shape (painter's algorithm).

    Shapes are given by python floats in normalised units; :meth:`mask` returns the soft
    mask of a perturbed ellipse, :meth:`paint` blends ``value`` (a number or an ``(N, N)``
    field) into the image under a mask, :meth:`field` renders a random texture.
    """

    def __init__(self, image_size: int, draw: Draw):
        self.n = image_size
        self.draw = draw
        self.X, self.Y = grid(image_size)
        self.img = torch.zeros(image_size, image_size, dtype=F64)

    @staticmethod
    def _t(*values: float) -> list[torch.Tensor]:
        return [torch.tensor([float(v)], dtype=F64) for v in values]

    def radius(self, cx: float, cy: float, a: float, b: float, theta: float = 0.0,
               harmonics: torch.Tensor | None = None) -> torch.Tensor:
        """Relative radius ``q`` (N, N) of a perturbed ellipse (:func:`blob_radius`)."""
        h = None if harmonics is None else harmonics[None]
        return blob_radius(self.X, self.Y, *self._t(cx, cy, a, b, theta), h)[0]

    def mask(self, cx: float, cy: float, a: float, b: float, theta: float = 0.0,
             harmonics: torch.Tensor | None = None) -> torch.Tensor:
        """Soft mask (N, N) of a perturbed ellipse (:func:`blob`)."""
        h = None if harmonics is None else harmonics[None]
        return blob(self.X, self.Y, *self._t(cx, cy, a, b, theta), h)[0]

    def paint(self, mask: torch.Tensor, value) -> None:
        """``img <- img (1 - mask) + value mask``."""
        self.img = self.img * (1 - mask) + value * mask

    def skull(self, cx: float, cy: float, a: float, b: float, theta: float,
              harmonics: torch.Tensor, scalp: tuple[float, float], bone: float, marrow: float,
              thickness: float, inside: float) -> tuple[float, float]:
        """Scalp ``(thickness, value)``, skull of ``thickness`` (outer and inner tables of
        ``bone`` around a ``marrow`` diploe), and ``inside`` filling what is left; returns the
        semi-axes ``(a, b)`` inside the skull."""
        self.paint(self.mask(cx, cy, a, b, theta, harmonics), scalp[1])
        a, b = a - scalp[0], b - scalp[0]
        for inset, value in ((0.0, bone), (0.3, marrow), (0.7, bone)):
            self.paint(self.mask(cx, cy, a - inset * thickness, b - inset * thickness, theta,
                                 harmonics), value)
        a, b = a - thickness, b - thickness
        self.paint(self.mask(cx, cy, a, b, theta, harmonics), inside)
        return a, b

    def harmonics(self, m: int, amplitude: float) -> torch.Tensor:
        """Random ``(m, 2)`` radius harmonics of standard deviation ``amplitude / m``."""
        return self.draw.normal(m, 2) * amplitude / m

    def field(self, kmax: int, k0: float, slope: float, kc: float) -> torch.Tensor:
        """A unit-variance random field (N, N) (:func:`random_field_coefficients`)."""
        coef = random_field_coefficients(self.draw, 1, kmax, k0, slope, kc)
        return render_field(coef, self.n)[0]
