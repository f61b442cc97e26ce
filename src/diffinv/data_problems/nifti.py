"""NIfTI-1 output of 2-D posterior images with the voxel size (mm), via nibabel (optional).

Images ``(H, W)`` (row = y, column = x) are stored as ``(x, y, 1)`` volumes with the affine
``diag(dx, dy, dz, 1)`` in millimetres (``xyzt_units`` mm); a stack ``(K, H, W)`` becomes a
4-D ``(x, y, 1, K)`` file.  Install with ``pip install diffinv[data]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..extras import require
from ..io import atomic_write

__all__ = ["require_nibabel", "write_nifti", "write_nifti_images"]


def require_nibabel():
    """Import nibabel or raise ``ValueError`` naming the optional extra (``diffinv[data]``)."""
    try:
        return require("nibabel", purpose="NIfTI output of MRI and CT reconstructions")
    except ImportError as err:
        raise ValueError(str(err)) from None


def write_nifti(path: Path, image: torch.Tensor, voxel_mm: tuple[float, float, float]) -> Path:
    """Write a real ``(H, W)`` or ``(K, H, W)`` image with voxel size ``(dy, dx, dz)`` mm."""
    nib = require_nibabel()
    arr = image.detach().cpu().to(torch.float32).numpy()
    vol = np.swapaxes(arr, -1, -2)[..., None]  # (..., x, y, 1)
    if vol.ndim == 4:
        vol = np.moveaxis(vol, 0, -1)  # (x, y, 1, K)
    dy, dx, dz = (float(v) for v in voxel_mm)
    img = nib.Nifti1Image(vol, np.diag([dx, dy, dz, 1.0]))
    img.header.set_xyzt_units("mm")
    img.header.set_zooms((dx, dy, dz) + ((1.0,) if vol.ndim == 4 else ()))

    def write(tmp: str) -> None:
        nib.save(img, tmp)

    return atomic_write(path, write, suffix=".nii")


def write_nifti_images(out: Path, images: dict[str, torch.Tensor], meta: dict) -> list[str]:
    """``mean.nii``, ``std.nii`` and ``samples.nii`` with ``meta["voxel_size_mm"]``."""
    voxel = meta["voxel_size_mm"]
    names = []
    for name in ("mean", "std", "samples"):
        write_nifti(out / f"{name}.nii", images[name], voxel)
        names.append(f"{name}.nii")
    return names
