r"""Reader for tomography data in the Data Exchange HDF5 layout (APS / TomoPy).

Layout (F. De Carlo et al., "Scientific data exchange: a schema for HDF5-based storage of
raw and analyzed data", J. Synchrotron Rad. 21:1224-1230, 2014):

* ``/exchange/data``        raw projections ``(n_angles, n_rows, n_columns)``;
* ``/exchange/data_white``  flat fields (beam, no sample) ``(n_flats, n_rows, n_columns)``;
* ``/exchange/data_dark``   dark fields (no beam) ``(n_darks, n_rows, n_columns)``;
* ``/exchange/theta``       projection angles (TomoPy writes degrees), optional.

Each detector row is one sinogram slice.  Flat/dark correction gives line integrals

.. math:: \ell = -\log\frac{I - D}{F - D}

with ``F`` and ``D`` the mean flat and dark fields and the transmission clamped to
``[min_transmission, inf)`` (dead pixels, photon starvation).  Only the requested rows are
read from disk (HDF5 hyperslab selection), never the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from ..io import reader

__all__ = [
    "DataExchangeScan",
    "read_data_exchange_counts",
    "read_data_exchange",
    "estimate_rotation_center",
]


@dataclass
class DataExchangeScan:
    """Raw counts of selected detector rows.

    Attributes
    ----------
    data : np.ndarray
        float64 ``(n_rows, n_angles, n_columns)`` projections, sinogram-ordered.
    flat, dark : np.ndarray
        float64 ``(n_rows, n_columns)`` mean flat and dark fields.
    angles : np.ndarray
        float64 ``(n_angles,)`` radians.
    rows : list of int
        The detector rows read.
    """

    data: np.ndarray
    flat: np.ndarray
    dark: np.ndarray
    angles: np.ndarray
    rows: list[int]


def _rows(rows: int | Sequence[int] | slice | None, n_rows: int) -> list[int]:
    if rows is None:
        return list(range(n_rows))
    if isinstance(rows, slice):
        out = list(range(n_rows))[rows]
    elif isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
        out = [int(rows)]
    elif isinstance(rows, (str, bytes)):
        raise ValueError(f"rows: expected an int, a sequence of ints or a slice, got {rows!r}")
    else:
        try:
            out = [int(r) for r in rows]
        except (TypeError, ValueError):
            raise ValueError(
                f"rows: expected an int, a sequence of ints or a slice, got {rows!r}"
            ) from None
    out = [r + n_rows if r < 0 else r for r in out]
    if not out or any(r < 0 or r >= n_rows for r in out):
        raise ValueError(f"rows: expected detector rows in [0, {n_rows}), got {rows!r}")
    return out


def _read_rows(ds: h5py.Dataset, rows: list[int]) -> np.ndarray:
    """Read ``ds[:, rows, :]`` as float64 ``(len(rows), n, n_columns)`` row by row."""
    return np.stack([np.asarray(ds[:, r, :], dtype=np.float64) for r in rows])


def _angles(f: h5py.File, n_angles: int, theta_unit: str) -> np.ndarray:
    if theta_unit not in ("auto", "deg", "rad"):
        raise ValueError(f"theta_unit: expected 'auto', 'deg' or 'rad', got {theta_unit!r}")
    if "exchange/theta" not in f:
        return np.arange(n_angles, dtype=np.float64) * (math.pi / n_angles)
    theta = np.asarray(f["exchange/theta"][...], dtype=np.float64).reshape(-1)
    if theta.shape[0] != n_angles:
        raise ValueError(
            f"path: /exchange/theta has {theta.shape[0]} angles but /exchange/data has "
            f"{n_angles} projections"
        )
    if not np.all(np.isfinite(theta)):
        raise ValueError("path: /exchange/theta contains NaN or Inf")
    degrees = theta_unit == "deg" or (
        theta_unit == "auto" and float(np.abs(theta).max()) > 2 * math.pi + 1e-6
    )
    return np.deg2rad(theta) if degrees else theta


@reader("Data Exchange HDF5")
def read_data_exchange_counts(
    path: str | Path, rows: int | Sequence[int] | slice | None = 0, theta_unit: str = "auto"
) -> DataExchangeScan:
    """Read raw projections, mean flat and dark fields of selected rows.

    Parameters
    ----------
    path : str or Path
        Data Exchange HDF5 file.
    rows : int, sequence of int, slice or None
        Detector rows (sinogram slices) to read; ``None`` reads all.
    theta_unit : {"auto", "deg", "rad"}
        Unit of ``/exchange/theta``; ``auto`` takes degrees when any angle exceeds ``2 pi``.
        Without ``/exchange/theta`` the angles are evenly spaced over ``[0, pi)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: Data Exchange file {str(path)!r} not found")
    with h5py.File(path, "r") as f:
        for name in ("exchange/data", "exchange/data_white", "exchange/data_dark"):
            if name not in f:
                raise ValueError(f"path: {str(path)!r} has no /{name} dataset (not Data Exchange?)")
        data = f["exchange/data"]
        if data.ndim != 3:
            raise ValueError(
                f"path: /exchange/data must be 3-D (angles, rows, columns), got {data.shape}"
            )
        n_angles, n_rows, n_cols = data.shape
        for name in ("exchange/data_white", "exchange/data_dark"):
            shape = f[name].shape
            if len(shape) != 3 or tuple(shape[1:]) != (n_rows, n_cols):
                raise ValueError(
                    f"path: /{name} has shape {shape}, expected (n, {n_rows}, {n_cols})"
                )
        sel = _rows(rows, n_rows)
        projections = _read_rows(data, sel)
        flat = _read_rows(f["exchange/data_white"], sel).mean(axis=1)
        dark = _read_rows(f["exchange/data_dark"], sel).mean(axis=1)
        angles = _angles(f, n_angles, theta_unit)
    for name, arr in (("data", projections), ("data_white", flat), ("data_dark", dark)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"path: /exchange/{name} contains NaN or Inf in the selected rows")
    return DataExchangeScan(projections, flat, dark, angles, sel)


@reader("Data Exchange HDF5")
def read_data_exchange(
    path: str | Path,
    rows: int | Sequence[int] | slice | None = 0,
    min_transmission: float = 1e-6,
    theta_unit: str = "auto",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat/dark-corrected sinograms of selected detector rows.

    Parameters
    ----------
    path : str or Path
        Data Exchange HDF5 file.
    rows : int, sequence of int, slice or None
        Detector rows; an int gives one slice.
    min_transmission : float
        Lower clamp of ``(I - D) / (F - D)`` before the logarithm (in (0, 1)).
    theta_unit : {"auto", "deg", "rad"}
        See :func:`read_data_exchange_counts`.
    dtype : torch.dtype
        Dtype of the sinogram.

    Returns
    -------
    sinogram : torch.Tensor
        ``(n_rows, 1, n_angles, n_columns)`` dimensionless line integrals
        (``(1, 1, n_angles, n_columns)`` for one row).
    angles : torch.Tensor
        float64 ``(n_angles,)`` radians.
    """
    if not (0 < min_transmission < 1):
        raise ValueError(f"min_transmission: expected a value in (0, 1), got {min_transmission!r}")
    scan = read_data_exchange_counts(path, rows, theta_unit)
    den = np.maximum(scan.flat - scan.dark, 1e-12)[:, None, :]
    trans = (scan.data - scan.dark[:, None, :]) / den
    line = -np.log(np.clip(trans, min_transmission, None))
    sino = torch.from_numpy(line).to(dtype)[:, None]
    return sino, torch.from_numpy(scan.angles)


def estimate_rotation_center(sinogram: torch.Tensor, angles: torch.Tensor) -> float:
    r"""Detector cell index of the rotation axis, from the centre of mass of each projection.

    For parallel-beam data the centre of mass of projection :math:`\theta` moves on a sinusoid,
    :math:`c(\theta) = c_0 + a\cos\theta + b\sin\theta` (Helgason-Ludwig consistency of
    order one); the least-squares fit returns :math:`c_0`.  Needs non-negative line integrals
    of an object seen whole by every projection and angles not all equal.

    Parameters
    ----------
    sinogram : torch.Tensor
        ``(..., n_angles, n_detectors)`` line integrals; leading dims are averaged.
    angles : torch.Tensor
        ``(n_angles,)`` radians.

    Returns
    -------
    float
        Fractional cell index (pass as ``rotation_center`` to ``ParallelBeamRadon``).
    """
    p = sinogram.detach().to(torch.float64).reshape(-1, *sinogram.shape[-2:]).mean(0)
    p = p.clamp(min=0.0)
    if p.shape[0] != angles.numel():
        raise ValueError(
            f"angles: expected {p.shape[0]} angles to match the sinogram, got {angles.numel()}"
        )
    mass = p.sum(1)
    if bool((mass <= 0).any()):
        raise ValueError("sinogram: every projection needs positive total attenuation")
    k = torch.arange(p.shape[1], dtype=torch.float64)
    c = (p * k).sum(1) / mass
    a = angles.to(torch.float64).reshape(-1)
    design = torch.stack([torch.ones_like(a), torch.cos(a), torch.sin(a)], 1)
    coef = torch.linalg.lstsq(design, c[:, None]).solution
    return float(coef[0, 0])
