"""Data Exchange HDF5 reader: flat/dark correction, row selection, angles, errors."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from diffinv.datasets.data_exchange import (
    estimate_rotation_center,
    read_data_exchange,
    read_data_exchange_counts,
)


def _write(path, data, white, dark, theta=None):
    with h5py.File(path, "w") as f:
        f["exchange/data"] = data
        f["exchange/data_white"] = white
        f["exchange/data_dark"] = dark
        if theta is not None:
            f["exchange/theta"] = theta


@pytest.fixture
def scan(tmp_path):
    rng = np.random.default_rng(0)
    n_ang, n_rows, n_cols = 12, 5, 16
    ell = rng.uniform(0.0, 3.0, size=(n_ang, n_rows, n_cols))
    dark = rng.uniform(90.0, 110.0, size=(4, n_rows, n_cols))
    white = rng.uniform(9000.0, 11000.0, size=(6, n_rows, n_cols))
    d, w = dark.mean(0), white.mean(0)
    data = d + (w - d) * np.exp(-ell)
    path = tmp_path / "scan.h5"
    _write(
        path,
        data.astype(np.float32),
        white.astype(np.float32),
        dark.astype(np.float32),
        np.linspace(0.0, 180.0, n_ang, endpoint=False),
    )
    return path, ell


def test_flat_dark_correction_recovers_line_integrals(scan):
    path, ell = scan
    sino, angles = read_data_exchange(path, rows=[1, 3], dtype=torch.float64)
    assert sino.shape == (2, 1, 12, 16)
    expected = np.stack([ell[:, 1, :], ell[:, 3, :]])[:, None]
    assert np.allclose(sino.numpy(), expected, atol=1e-4)
    assert angles.dtype == torch.float64
    assert torch.allclose(angles, torch.arange(12, dtype=torch.float64) * math.pi / 12)


def test_single_row_and_slices(scan):
    path, ell = scan
    one, _ = read_data_exchange(path, rows=2)
    assert one.shape == (1, 1, 12, 16) and one.dtype == torch.float32
    assert np.allclose(one[0, 0].numpy(), ell[:, 2, :], atol=1e-4)
    last, _ = read_data_exchange(path, rows=-1)
    assert np.allclose(last[0, 0].numpy(), ell[:, 4, :], atol=1e-4)
    every, _ = read_data_exchange(path, rows=slice(0, 5, 2))
    assert every.shape[0] == 3
    raw = read_data_exchange_counts(path, rows=None)
    assert (
        raw.data.shape == (5, 12, 16) and raw.flat.shape == (5, 16) and raw.rows == list(range(5))
    )


def test_clamp_keeps_dead_pixels_finite(tmp_path):
    data = np.full((3, 1, 4), 50.0)
    data[0, 0, 0] = 0.0  # below the dark level: negative transmission
    path = tmp_path / "dead.h5"
    _write(path, data, np.full((2, 1, 4), 1000.0), np.full((2, 1, 4), 100.0))
    sino, angles = read_data_exchange(path, min_transmission=1e-3)
    assert torch.isfinite(sino).all()
    assert float(sino[0, 0, 0, 0]) == pytest.approx(-math.log(1e-3), rel=1e-6)
    # no theta dataset: evenly spaced over [0, pi)
    assert torch.allclose(angles, torch.arange(3, dtype=torch.float64) * math.pi / 3)


def test_theta_units(tmp_path):
    path = tmp_path / "rad.h5"
    theta = np.linspace(0, math.pi, 4, endpoint=False)
    _write(path, np.ones((4, 1, 3)), np.full((1, 1, 3), 2.0), np.zeros((1, 1, 3)), theta)
    _, a = read_data_exchange(path)
    assert np.allclose(a.numpy(), theta)
    _, a = read_data_exchange(path, theta_unit="deg")
    assert np.allclose(a.numpy(), np.deg2rad(theta))


def test_errors(tmp_path, scan):
    path, _ = scan
    with pytest.raises(FileNotFoundError, match="path"):
        read_data_exchange(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="rows"):
        read_data_exchange(path, rows=7)
    with pytest.raises(ValueError, match="rows"):
        read_data_exchange(path, rows="all")
    with pytest.raises(ValueError, match="min_transmission"):
        read_data_exchange(path, min_transmission=0.0)
    with pytest.raises(ValueError, match="theta_unit"):
        read_data_exchange(path, theta_unit="grad")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["exchange/data"] = np.ones((2, 1, 3))
    with pytest.raises(ValueError, match="data_white"):
        read_data_exchange(bad)
    nan = tmp_path / "nan.h5"
    _write(nan, np.full((2, 1, 3), np.nan), np.ones((1, 1, 3)), np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        read_data_exchange(nan)


def test_rotation_center_of_a_shifted_synthetic_scan():
    from diffinv.datasets.ct_phantoms import shepp_logan
    from diffinv.operators.ct import ParallelBeamRadon

    op = ParallelBeamRadon(64, 90, n_detectors=100, rotation_center=41.3)
    sino = op(shepp_logan(64))
    assert estimate_rotation_center(sino, op.angles) == pytest.approx(41.3, abs=0.05)


def test_real_tooth_file(shared_data):
    path = shared_data("ct_tomopy_tooth") / "tooth.h5"
    sino, angles = read_data_exchange(path, rows=[0, 1])
    assert sino.shape == (2, 1, 181, 640)
    assert float(angles[-1]) == pytest.approx(math.radians(179.0055), rel=1e-4)
    assert torch.isfinite(sino).all()
    # the tooth attenuates: line integrals up to ~2, air near 0
    assert 1.5 < float(sino.max()) < 3.0
    assert abs(float(sino[..., :20].median())) < 0.1
