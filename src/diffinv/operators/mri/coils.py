"""Coil sensitivities and noise pre-whitening.

* :func:`birdcage_maps` — simulated sensitivities of loops on a circle around the object;
* :func:`espirit_maps` — ESPIRiT estimation from the calibration region (Uecker et al. 2014,
  MRM 71:990) through :class:`sigpy.mri.app.EspiritCalib`;
* :func:`noise_covariance`, :func:`whitening_matrix`, :func:`prewhiten` — coil noise
  decorrelation (Pruessmann et al. 2001, MRM 46:638): with ``Sigma = L L^H``, the whitened
  data ``L^{-1} y`` (and maps ``L^{-1} S``) have identity noise covariance.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...extras import require
from ..noise import check_finite

__all__ = ["birdcage_maps", "espirit_maps", "noise_covariance", "whitening_matrix", "prewhiten",
           "rss"]


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares ``sqrt(sum_c |x_c|^2)`` over ``dim`` (real output)."""
    return torch.sqrt((x.abs() ** 2).sum(dim=dim))


def birdcage_maps(
    shape: tuple[int, int],
    n_coils: int = 8,
    radius: float = 1.5,
    dtype: torch.dtype = torch.complex64,
    normalize: bool = True,
) -> torch.Tensor:
    """Simulated sensitivities of ``n_coils`` loops evenly spaced on a circle.

    Coil ``c`` sits at angle ``2 pi c / n_coils`` on a circle of ``radius`` (in units of half
    the field of view) around the image centre.  Its sensitivity at pixel ``p`` falls off as
    ``1 / |p - p_c|`` with a phase equal to the azimuth of ``p - p_c`` plus the coil angle (the
    field of a small loop seen in its plane), a common analytic model for array coils.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``.
    n_coils : int
    radius : float
        Coil circle radius relative to half the field of view (> 1: coils outside the FOV).
    normalize : bool
        Scale so that ``sum_c |S_c|^2 = 1`` at every pixel (the ESPIRiT normalisation).

    Returns
    -------
    torch.Tensor
        ``(n_coils, H, W)`` complex.
    """
    if n_coils < 1:
        raise ValueError(f"n_coils: expected a positive integer, got {n_coils!r}")
    if not radius > 0:
        raise ValueError(f"radius: expected a positive number, got {radius!r}")
    h, w = int(shape[0]), int(shape[1])
    yy = (torch.arange(h, dtype=torch.float64) - h // 2) / (max(h, w) / 2)
    xx = (torch.arange(w, dtype=torch.float64) - w // 2) / (max(h, w) / 2)
    gy, gx = torch.meshgrid(yy, xx, indexing="ij")
    ang = 2 * math.pi * torch.arange(n_coils, dtype=torch.float64) / n_coils
    cy, cx = radius * torch.sin(ang), radius * torch.cos(ang)
    dy = gy[None] - cy[:, None, None]
    dx = gx[None] - cx[:, None, None]
    dist = torch.sqrt(dx**2 + dy**2).clamp(min=1e-6)
    phase = torch.atan2(dy, dx) + ang[:, None, None]
    maps = torch.polar(1.0 / dist, phase)
    if normalize:
        maps = maps / rss(maps, dim=0)[None]
    return maps.to(dtype)


def espirit_maps(
    kspace: torch.Tensor | np.ndarray,
    calib_width: int = 24,
    threshold: float = 0.02,
    kernel_width: int = 6,
    crop: float = 0.95,
    max_iter: int = 100,
) -> torch.Tensor:
    """ESPIRiT coil sensitivities from the fully sampled k-space centre.

    Parameters
    ----------
    kspace : torch.Tensor or numpy.ndarray
        Multi-coil k-space ``(coils, H, W)`` in the centred convention of
        :func:`~diffinv.operators.mri.fft.fft2c` (zero where not acquired); the central
        ``calib_width`` square must be fully sampled.
    calib_width : int
        Side of the calibration square in k-space samples.
    threshold : float
        Singular-value threshold of the calibration matrix (relative).
    kernel_width : int
        ESPIRiT kernel size.
    crop : float
        Eigenvalue threshold below which maps are set to zero (outside the object).
    max_iter : int
        Power iterations.

    Returns
    -------
    torch.Tensor
        ``(coils, H, W)`` complex maps (dtype of the input, at least complex64), with
        ``sum_c |S_c|^2 = 1`` inside the object, phase relative to the first coil, zero outside.
    """
    EspiritCalib = require("sigpy.mri.app", purpose="ESPIRiT coil maps").EspiritCalib

    is_torch = isinstance(kspace, torch.Tensor)
    arr = kspace.detach().cpu().numpy() if is_torch else np.asarray(kspace)
    if arr.ndim != 3:
        raise ValueError(f"kspace: expected (coils, H, W), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("kspace: contains NaN or Inf values")
    if not 0 < calib_width <= min(arr.shape[1:]):
        raise ValueError(f"calib_width: expected 1..{min(arr.shape[1:])}, got {calib_width!r}")
    arr = arr.astype(np.complex128 if arr.dtype == np.complex128 else np.complex64)
    maps = EspiritCalib(
        arr, calib_width=calib_width, thresh=threshold, kernel_width=kernel_width, crop=crop,
        max_iter=max_iter, show_pbar=False,
    ).run()
    out = torch.from_numpy(np.ascontiguousarray(maps))
    return out.to(kspace.device) if is_torch else out


def noise_covariance(noise: torch.Tensor, coil_dim: int = 0) -> torch.Tensor:
    """Coil noise covariance ``Sigma = E[n n^H]`` from a noise-only scan.

    Parameters
    ----------
    noise : torch.Tensor
        Complex noise samples with coils along ``coil_dim`` (any number of other axes).

    Returns
    -------
    torch.Tensor
        ``(coils, coils)`` Hermitian covariance (complex), averaged over samples.
    """
    check_finite("noise", noise)
    n = torch.movedim(noise, coil_dim, 0).reshape(noise.shape[coil_dim], -1)
    if n.shape[1] < 2:
        raise ValueError("noise: expected at least two samples per coil")
    n = n - n.mean(dim=1, keepdim=True)
    return (n @ n.conj().transpose(0, 1)) / (n.shape[1] - 1)


def whitening_matrix(covariance: torch.Tensor) -> torch.Tensor:
    """``L^{-1}`` with ``Sigma = L L^H`` (Cholesky), so ``L^{-1} Sigma L^{-H} = I``."""
    cov = torch.as_tensor(covariance)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(
            f"covariance: expected a square (coils, coils) matrix, got {tuple(cov.shape)}"
        )
    check_finite("covariance", cov)
    cov = 0.5 * (cov + cov.conj().transpose(0, 1))
    try:
        chol = torch.linalg.cholesky(cov)
    except RuntimeError as err:
        raise ValueError("covariance: expected a positive definite matrix") from err
    eye = torch.eye(cov.shape[0], dtype=chol.dtype, device=chol.device)
    return torch.linalg.solve_triangular(chol, eye, upper=False)


def prewhiten(data: torch.Tensor, covariance: torch.Tensor, coil_dim: int = 1) -> torch.Tensor:
    """Decorrelate coil noise: ``L^{-1}`` applied along ``coil_dim`` (returns a new tensor).

    Apply the same to k-space (``coil_dim=1`` for ``(batch, coils, ...)``) and to coil maps
    (``coil_dim=0``), since ``L^{-1} F (S x) = F ((L^{-1} S) x)``.
    """
    wmat = whitening_matrix(covariance).to(device=data.device)
    wmat = wmat.to(torch.promote_types(wmat.dtype, data.dtype))
    moved = torch.movedim(data, coil_dim, -1).to(wmat.dtype)
    if moved.shape[-1] != wmat.shape[0]:
        raise ValueError(
            f"data: expected {wmat.shape[0]} coils along dim {coil_dim}, got {moved.shape[-1]}"
        )
    return torch.movedim(moved @ wmat.transpose(0, 1), -1, coil_dim)
