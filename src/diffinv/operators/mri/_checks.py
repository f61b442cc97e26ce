"""Small input checks shared by the MRI operators."""

from __future__ import annotations

import torch

from ..noise import check_finite

__all__ = ["as_complex", "check_image", "check_maps"]


def as_complex(x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` as a complex tensor (real input is promoted, complex kept)."""
    if x.is_complex():
        return x
    return x.to(torch.promote_types(x.dtype, torch.complex64))


def check_maps(coil_maps: torch.Tensor | None, name: str = "coil_maps") -> torch.Tensor | None:
    """Validate coil sensitivity maps ``(coils, H, W)``; a 2-D map becomes one coil."""
    if coil_maps is None:
        return None
    if not isinstance(coil_maps, torch.Tensor):
        coil_maps = torch.as_tensor(coil_maps)
    if coil_maps.ndim == 2:
        coil_maps = coil_maps[None]
    if coil_maps.ndim != 3:
        raise ValueError(
            f"{name}: expected a complex tensor (coils, H, W), got {tuple(coil_maps.shape)}"
        )
    check_finite(name, coil_maps)
    return as_complex(coil_maps)


def check_image(x: torch.Tensor, shape: tuple[int, int], name: str = "x") -> torch.Tensor:
    """Check ``x`` is ``(batch, 1, H, W)`` and return it as complex."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != tuple(shape):
        raise ValueError(
            f"{name}: expected shape (batch, 1, {shape[0]}, {shape[1]}), got {tuple(x.shape)}"
        )
    return as_complex(x)
