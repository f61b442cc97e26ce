"""Cartesian undersampling patterns: fastMRI-style line masks and Poisson-disc masks.

Phase encoding runs along the last image axis (columns, ``W``): a line mask selects columns
and is fully sampled along the readout (rows), as in the fastMRI knee/brain data.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...extras import require

__all__ = ["cartesian_mask", "poisson_disc_mask"]


def _check_accel(acceleration: float, center_fraction: float, width: int) -> int:
    if not (acceleration >= 1 and math.isfinite(acceleration)):
        raise ValueError(f"acceleration: expected a finite number >= 1, got {acceleration!r}")
    if not 0 <= center_fraction <= 1:
        raise ValueError(f"center_fraction: expected a fraction in [0, 1], got {center_fraction!r}")
    num_low = int(round(width * center_fraction))
    if num_low > width / acceleration:
        raise ValueError(
            f"center_fraction: {center_fraction} of {width} lines already exceeds the 1/"
            f"{acceleration} sampling budget; lower it or the acceleration"
        )
    return num_low


def cartesian_mask(
    shape: tuple[int, int],
    acceleration: float,
    center_fraction: float = 0.08,
    kind: str = "random",
    seed: int | None = 0,
) -> torch.Tensor:
    """fastMRI-style phase-encode line mask with a fully sampled centre.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(H, W)``; lines are columns (the last axis).
    acceleration : float
        Target acceleration ``R``: about ``W / R`` lines are sampled in total.
    center_fraction : float
        Fraction of the ``W`` lines around k = 0 that are always sampled (0.08 for R=4 and
        0.04 for R=8 in fastMRI).
    kind : {"random", "equispaced"}
        ``random``: each outer line is kept independently with probability
        ``(W/R - n_centre) / (W - n_centre)`` (fastMRI ``RandomMaskFunc``).  ``equispaced``:
        outer lines on a regular grid with a random offset, its spacing adjusted so the total
        is about ``W / R`` (fastMRI ``EquispacedMaskFractionFunc``).
    seed : int or None
        Seed of the random choices (``None`` for a fresh draw).

    Returns
    -------
    torch.Tensor
        Boolean ``(H, W)`` mask, ``True`` where k-space is acquired.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape!r}")
    h, w = int(shape[0]), int(shape[1])
    num_low = _check_accel(acceleration, center_fraction, w)
    rng = np.random.default_rng(seed)
    lines = np.zeros(w, dtype=bool)
    if kind == "random":
        prob = (w / acceleration - num_low) / max(w - num_low, 1)
        lines = rng.uniform(size=w) < prob
    elif kind == "equispaced":
        if num_low * acceleration != w:
            spacing = acceleration * (num_low - w) / (num_low * acceleration - w)
        else:
            spacing = acceleration
        offset = int(rng.integers(0, max(int(round(spacing)), 1)))
        idx = np.round(np.arange(offset, w - 1, spacing)).astype(int)
        lines[idx[idx < w]] = True
    else:
        raise ValueError(f"kind: expected 'random' or 'equispaced', got {kind!r}")
    pad = (w - num_low + 1) // 2
    lines[pad : pad + num_low] = True
    return torch.from_numpy(np.broadcast_to(lines, (h, w)).copy())


def poisson_disc_mask(
    shape: tuple[int, int],
    acceleration: float,
    calib: tuple[int, int] = (24, 24),
    seed: int = 0,
    crop_corner: bool = True,
) -> torch.Tensor:
    """Variable-density Poisson-disc mask for 2-D (both phase-encode axes) undersampling.

    Uses :func:`sigpy.mri.poisson` (Bridson's algorithm with a radius growing away from the
    centre, Lustig et al. 2007, MRM 58:1182) and returns a boolean ``(H, W)`` tensor with a
    fully sampled ``calib`` square at the centre.
    """
    sigpy_mri = require("sigpy.mri", purpose="Poisson-disc masks")

    if not (acceleration >= 1 and math.isfinite(acceleration)):
        raise ValueError(f"acceleration: expected a finite number >= 1, got {acceleration!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape: expected (H, W) with positive sizes, got {shape!r}")
    mask = sigpy_mri.poisson(
        tuple(int(s) for s in shape), float(acceleration), calib=tuple(calib), seed=int(seed),
        crop_corner=crop_corner, dtype=np.complex64,
    )
    return torch.from_numpy(np.abs(mask) > 0)
