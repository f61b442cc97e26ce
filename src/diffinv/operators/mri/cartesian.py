"""Cartesian multi-coil MRI: coil sensitivities, centred FFT, k-space sampling mask."""

from __future__ import annotations

import torch

from ..base import LinearOperator
from ._checks import as_complex, check_image, check_maps
from .fft import centring_signs, fft2c, ifft2c

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
    if not bool(mask.any()):
        raise ValueError("mask: no k-space entry is sampled (the mask is all zero)")
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
        self._even = img_shape[0] % 2 == 0 and img_shape[1] % 2 == 0
        self._cache: dict = {}
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

    def _factors(self, like: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Maps and output weights in ``like``'s dtype/device, centring signs folded in.

        For even image sizes the centred FFT is ``s_out * fft2(s_in * .)``; ``s_in`` is folded
        into the maps (or returned as the map of a single-coil operator) and ``s_out`` into
        the mask, so each transform is one multiply, one FFT and one multiply.  For odd sizes
        the maps and a real 0/1 mask are returned and :func:`fft2c` is used.
        """
        key = (like.dtype, str(like.device))
        cached = self._cache.get(key)
        if cached is None:
            real = like.real.dtype
            maps = None
            if self.coil_maps is not None:
                maps = self.coil_maps.to(dtype=like.dtype, device=like.device)
            weights = self.mask.to(device=like.device, dtype=real)
            signs = centring_signs(self.image_shape, real, like.device)
            if signs is not None:
                s_in, s_out = signs
                maps = s_in.to(like.dtype) if maps is None else maps * s_in
                weights = weights * s_out
            cached = (maps, weights)
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def _to_kspace(self, coil_images: torch.Tensor) -> torch.Tensor:
        if self._even:
            return torch.fft.fft2(coil_images, dim=(-2, -1), norm="ortho")
        return fft2c(coil_images)

    def _to_image(self, kspace: torch.Tensor) -> torch.Tensor:
        if self._even:
            return torch.fft.ifft2(kspace, dim=(-2, -1), norm="ortho")
        return ifft2c(kspace)

    def to(self, device: torch.device | str) -> MultiCoilMRI:
        """Move maps and mask to ``device`` (drops cached folded factors)."""
        super().to(device)
        self._cache = {}
        return self

    #: On the CPU batches are processed in chunks whose coil images take at most this many
    #: bytes, so each chunk's FFTs work in cache: per-image time stays flat with the batch
    #: (a 320 x 320, 16-coil batch of 8 in one piece cost 2.3x the per-image time).
    cpu_chunk_bytes: int = 8 << 20

    def _chunks(self, t: torch.Tensor, fn) -> torch.Tensor:
        """``fn`` over batch chunks of ``t`` (CPU), concatenated; one call elsewhere."""
        per_item = self.n_coils * t.shape[-2] * t.shape[-1] * t.element_size() * 2
        chunk = max(1, self.cpu_chunk_bytes // max(per_item, 1))
        if t.device.type != "cpu" or t.shape[0] <= chunk:
            return fn(t)
        return torch.cat([fn(t[i : i + chunk]) for i in range(0, t.shape[0], chunk)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H, W)`` image -> ``(batch, coils, H, W)`` masked k-space."""
        x = check_image(x, self.image_shape)
        return self._chunks(x, self._forward)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        maps, weights = self._factors(x)
        coil_images = x if maps is None else x * maps
        return self._to_kspace(coil_images) * weights

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(batch, coils, H, W)`` k-space -> ``(batch, 1, H, W)`` coil-combined image."""
        y = as_complex(y)
        if y.ndim != 4 or tuple(y.shape[1:]) != self.out_shape:
            raise ValueError(
                f"y: expected shape (batch, {', '.join(map(str, self.out_shape))}), "
                f"got {tuple(y.shape)}"
            )
        return self._chunks(y, self._adjoint)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        maps, weights = self._factors(y)
        img = self._to_image(y * weights)
        if maps is None:
            return img
        return (maps.conj() * img).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x``: the output signs square to one, so only the 0/1 mask is applied."""
        x = check_image(x, self.image_shape)
        return self._chunks(x, self._normal)

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        maps, weights = self._factors(x)
        coil_images = x if maps is None else x * maps
        k = self._to_kspace(coil_images) * (weights * weights)
        img = self._to_image(k)
        if maps is None:
            return img
        return (maps.conj() * img).sum(dim=1, keepdim=True)

    def __repr__(self) -> str:
        return (
            f"MultiCoilMRI(coils={self.n_coils}, shape={self.image_shape}, "
            f"R={self.acceleration:.2f})"
        )
