r"""Coded diffraction patterns (CDP; Candès, Li & Soltanolkotabi, ACHA 2015).

``L`` random masks modulate the object before a far-field (Fourier) measurement:

.. math::

    y_l = |F_c\, P\, (d_l \odot x)|^2,\qquad l = 1, \dots, L

with ``d_l`` fixed ``H x W`` masks, ``P`` optional zero padding to ``M x M`` (none by
default) and ``F_c`` the centred orthonormal DFT.  The linear part ``B x = (F_c P D_l x)_l``
satisfies ``B^H B = diag(sum_l |d_l|^2)``, i.e. ``L I`` for unit-modulus masks.

Mask types:

* ``"phase"`` (default): unit-modulus ``d = exp(i theta)``, ``theta ~ U[0, 2 pi)`` i.i.d.;
* ``"octanary"``: the paper's ``d = b1 b2`` with ``b1`` uniform on ``{1, -1, i, -i}`` and
  ``b2 = 1/sqrt(2)`` with probability 0.8, ``sqrt(3)`` with probability 0.2 (so
  ``E|d|^2 = 1``).
"""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator
from ._common import IntensityOperator, as_complex, check_image, fft2c, ifft2c
from .fourier import pad_widths, size2

__all__ = ["CodedDiffraction", "CodedFourier", "random_masks"]

MASK_TYPES = ("phase", "octanary")


def random_masks(
    n_masks: int, image_size: tuple[int, int], seed: int = 0, mask_type: str = "phase"
) -> torch.Tensor:
    """Draw ``(n_masks, H, W)`` complex128 masks on the CPU from ``seed`` (reproducible)."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type: expected one of {MASK_TYPES}, got {mask_type!r}")
    g = torch.Generator().manual_seed(int(seed))
    shape = (int(n_masks), *image_size)
    if mask_type == "phase":
        theta = 2 * math.pi * torch.rand(shape, dtype=torch.float64, generator=g)
        return torch.polar(torch.ones_like(theta), theta)
    unit = torch.tensor([1, -1, 1j, -1j], dtype=torch.complex128)
    b1 = unit[torch.randint(0, 4, shape, generator=g)]
    b2 = torch.where(
        torch.rand(shape, dtype=torch.float64, generator=g) < 0.8,
        torch.tensor(1 / math.sqrt(2), dtype=torch.float64),
        torch.tensor(math.sqrt(3), dtype=torch.float64),
    )
    return b1 * b2


class CodedFourier(LinearOperator):
    r"""``B x = (F_c P (d_l \odot x))_{l=1..L}``; input ``(batch, 1, H, W)``, output
    ``(batch, L, M_h, M_w)`` complex.  Adjoint ``B^H u = sum_l conj(d_l) P^T F_c^{-1} u_l``.

    Parameters
    ----------
    masks : torch.Tensor
        ``(L, H, W)`` complex masks.
    padded_size : (M_h, M_w), optional
        Detector grid; defaults to the image size (no padding).
    """

    def __init__(self, masks: torch.Tensor, padded_size: tuple[int, int] | None = None):
        if not isinstance(masks, torch.Tensor) or masks.ndim != 3:
            raise ValueError("masks: expected a (L, H, W) tensor")
        if not bool(torch.isfinite(masks).all()):
            raise ValueError("masks: contains NaN or Inf")
        self.masks = as_complex(masks)
        n, h, w = masks.shape
        mh, mw = size2(padded_size if padded_size is not None else (h, w), "padded_size")
        if mh < h or mw < w:
            raise ValueError(f"padded_size: expected at least {(h, w)}, got {(mh, mw)}")
        self.pad_h, self.pad_w = pad_widths(h, mh), pad_widths(w, mw)
        self.image_size, self.padded_size = (h, w), (mh, mw)
        self.in_shape = (1, h, w)
        self.out_shape = (n, mh, mw)

    def _masks_like(self, t: torch.Tensor) -> torch.Tensor:
        return self.masks.to(device=t.device, dtype=t.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("x", x, self.in_shape)
        x = as_complex(x)
        (t, b), (lft, r) = self.pad_h, self.pad_w
        z = torch.nn.functional.pad(self._masks_like(x) * x, (lft, r, t, b))
        return fft2c(z)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        check_image("y", y, self.out_shape)
        y = as_complex(y)
        (t, _), (lft, _) = self.pad_h, self.pad_w
        h, w = self.image_size
        z = ifft2c(y)[..., t:t + h, lft:lft + w]
        return (self._masks_like(z).conj() * z).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``B^H B x = (sum_l |d_l|^2) x``."""
        x = as_complex(x)
        return (self._masks_like(x).abs() ** 2).sum(0) * x

    def gram_diagonal(self) -> torch.Tensor:
        """``sum_l |d_l|^2`` as an ``(H, W)`` real tensor (the diagonal of ``B^H B``)."""
        return (self.masks.abs() ** 2).sum(0)


class CodedDiffraction(IntensityOperator):
    r"""Coded diffraction intensities ``y_l = |F_c P (d_l x)|^2`` (see the module docstring).

    Parameters
    ----------
    image_size : int or (H, W)
        Object size in pixels.
    n_masks : int
        Number of masks (diffraction patterns) ``L``.
    seed : int
        Seed of the mask draw; the same seed gives the same masks on every device.
    mask_type : {"phase", "octanary"}
        Mask distribution.
    oversampling : float
        Detector grid over object size (``M = round(oversampling * H)``); default 1.0.
    measure : {"intensity", "amplitude"}
    masks : torch.Tensor, optional
        Explicit ``(L, H, W)`` masks (overrides ``n_masks``/``seed``/``mask_type``).

    Shapes
    ------
    ``x``: ``(batch, 1, H, W)`` real or complex; ``op(x)``: ``(batch, L, M_h, M_w)`` real.
    """

    def __init__(
        self,
        image_size: int | tuple[int, int],
        n_masks: int = 4,
        seed: int = 0,
        *,
        mask_type: str = "phase",
        oversampling: float = 1.0,
        measure: str = "intensity",
        masks: torch.Tensor | None = None,
    ):
        h, w = size2(image_size)
        if masks is None:
            if int(n_masks) != n_masks or n_masks < 1:
                raise ValueError(f"n_masks: expected a positive integer, got {n_masks!r}")
            masks = random_masks(int(n_masks), (h, w), seed, mask_type)
        elif tuple(masks.shape[-2:]) != (h, w):
            raise ValueError(f"masks: expected shape (L, {h}, {w}), got {tuple(masks.shape)}")
        if not (float(oversampling) >= 1.0):
            raise ValueError(f"oversampling: expected a number >= 1, got {oversampling!r}")
        padded = (round(oversampling * h), round(oversampling * w))
        super().__init__(CodedFourier(masks, padded), measure)
        self.n_masks = masks.shape[0]
        self.seed = seed

    @property
    def masks(self) -> torch.Tensor:
        """The ``(L, H, W)`` complex masks."""
        return self.linear.masks
