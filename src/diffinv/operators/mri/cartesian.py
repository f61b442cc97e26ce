"""Cartesian multi-coil MRI: coil sensitivities, centred FFT, k-space sampling mask."""

from __future__ import annotations

import torch

from ..base import LinearOperator
from ._checks import as_complex, check_image, check_maps
from .fft import fft2c, ifft2c

__all__ = ["MultiCoilMRI", "check_mask"]


def check_mask(mask: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Validate a Cartesian sampling mask and return it as a boolean ``(H, W)`` tensor.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean (or 0/1) ``(H, W)`` mask, or a ``(W,)`` line mask (phase-encode lines along
        the last axis, fully sampled along the first) broadcast over ``H``.
    shape : tuple of int, optional
        Expected ``(H, W)``; needed to broadcast a ``(W,)`` mask.
    """
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    if mask.is_complex() or mask.is_floating_point():
        ok = (mask == 0) | (mask == 1)
        if not bool(ok.all()):
            raise ValueError("mask: expected boolean or 0/1 values")
        mask = mask.real != 0 if mask.is_complex() else mask != 0
    mask = mask.to(torch.bool)
    if mask.ndim == 1:
        if shape is None:
            raise ValueError("mask: a (W,) line mask needs coil_maps or shape to know H")
        mask = mask[None].expand(shape[0], mask.shape[0])
    if mask.ndim != 2:
        raise ValueError(f"mask: expected shape (H, W) or (W,), got {tuple(mask.shape)}")
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"mask: expected shape {tuple(shape)} to match the image, got {tuple(mask.shape)}"
        )
    return mask.contiguous()


class MultiCoilMRI(LinearOperator):
    r"""Parallel-imaging Cartesian MRI (SENSE model).

    .. math:: y_c = M\, F\, (S_c\, x),\qquad c = 1 \dots C

    with ``S_c`` the complex sensitivity of coil ``c``, ``F`` the orthonormal centred 2-D FFT
    (:func:`~diffinv.operators.mri.fft.fft2c`) and ``M`` the binary sampling mask.  The
    output keeps the full Cartesian grid: **unsampled k-space locations are exactly zero**
    (so data can be stored as the zero-filled k-space that fastMRI ships).  The adjoint is
    :math:`x = \sum_c \bar S_c F^H M y_c` and the normal operator
    :math:`A^H A x = \sum_c \bar S_c F^H M F S_c x` (one FFT pair per coil, mask applied
    once since ``M^2 = M``).

    Parameters
    ----------
    coil_maps : torch.Tensor, optional
        Complex sensitivities ``(coils, H, W)``; ``None`` means single-coil (``S = 1``),
        in which case ``shape`` is required unless ``mask`` is ``(H, W)``.
    mask : torch.Tensor, optional
        Boolean ``(H, W)`` or ``(W,)`` sampling mask (``True`` = acquired); default all
        sampled.
    shape : tuple of int, optional
        Image shape ``(H, W)`` for single-coil operators.

    Notes
    -----
    Input images are ``(batch, 1, H, W)`` complex64/complex128 (real input is promoted);
    the output is ``(batch, coils, H, W)`` of the input's complex dtype.  Coil maps are cast
    to the input's dtype and device at call time.
    """

    def __init__(
        self,
        coil_maps: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        shape: tuple[int, int] | None = None,
    ):
        maps = check_maps(coil_maps)
        if maps is not None:
            img_shape = tuple(maps.shape[-2:])
        elif shape is not None:
            img_shape = tuple(int(s) for s in shape)
        elif mask is not None and torch.as_tensor(mask).ndim == 2:
            img_shape = tuple(torch.as_tensor(mask).shape)
        else:
            raise ValueError(
                "shape: expected (H, W) when neither coil_maps nor a 2-D mask is given"
            )
        if shape is not None and tuple(shape) != img_shape:
            raise ValueError(f"shape: expected {img_shape} to match coil_maps, got {tuple(shape)}")
        self.coil_maps = maps
        self.mask = (
            torch.ones(img_shape, dtype=torch.bool) if mask is None else check_mask(mask, img_shape)
        )
        if maps is not None:
            self.mask = self.mask.to(maps.device)
        self.image_shape = img_shape
        n_coils = 1 if maps is None else maps.shape[0]
        self.in_shape = (1, *img_shape)
        self.out_shape = (n_coils, *img_shape)

    @property
    def n_coils(self) -> int:
        """Number of receive coils (1 for single-coil)."""
        return self.out_shape[0]

    @property
    def acceleration(self) -> float:
        """Nominal acceleration ``H W / (number of sampled locations)``."""
        return self.mask.numel() / max(int(self.mask.sum()), 1)

    def _maps(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.coil_maps is None:
            return None
        return self.coil_maps.to(dtype=like.dtype, device=like.device)

    def _mask(self, like: torch.Tensor) -> torch.Tensor:
        return self.mask.to(device=like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H, W)`` image -> ``(batch, coils, H, W)`` masked k-space."""
        x = check_image(x, self.image_shape)
        maps = self._maps(x)
        coil_images = x if maps is None else x * maps
        k = fft2c(coil_images)
        return torch.where(self._mask(k), k, torch.zeros((), dtype=k.dtype, device=k.device))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(batch, coils, H, W)`` k-space -> ``(batch, 1, H, W)`` coil-combined image."""
        y = as_complex(y)
        if y.ndim != 4 or tuple(y.shape[1:]) != self.out_shape:
            raise ValueError(
                f"y: expected shape (batch, {', '.join(map(str, self.out_shape))}), "
                f"got {tuple(y.shape)}"
            )
        y = torch.where(self._mask(y), y, torch.zeros((), dtype=y.dtype, device=y.device))
        img = ifft2c(y)
        maps = self._maps(img)
        if maps is None:
            return img
        return (maps.conj() * img).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x`` without materialising the zero-filled data twice."""
        x = check_image(x, self.image_shape)
        maps = self._maps(x)
        coil_images = x if maps is None else x * maps
        k = fft2c(coil_images) * self._mask(x).to(x.real.dtype)
        img = ifft2c(k)
        if maps is None:
            return img
        return (maps.conj() * img).sum(dim=1, keepdim=True)

    def __repr__(self) -> str:
        return (
            f"MultiCoilMRI(coils={self.n_coils}, shape={self.image_shape}, "
            f"R={self.acceleration:.2f})"
        )
