"""Baselines (zero-filled RSS, CG-SENSE, l1-wavelet) and fastMRI metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffinv.datasets.mri_phantoms import mri_phantom, simulate_multicoil
from diffinv.operators.mri import (
    MultiCoilMRI,
    NonCartesianMRI,
    birdcage_maps,
    cartesian_mask,
    cg_sense,
    fft2c,
    l1_wavelet_recon,
    nmse,
    psnr,
    radial_trajectory,
    rss,
    ssim,
    zero_filled_rss,
)

N, C = 64, 8


@pytest.fixture(scope="module")
def data():
    x = mri_phantom((N, N), dtype=torch.complex128)
    maps = birdcage_maps((N, N), C, dtype=torch.complex128)
    mask = cartesian_mask((N, N), 4, 0.08, "equispaced", seed=0)
    g = torch.Generator().manual_seed(0)
    return simulate_multicoil(x, maps, mask, sigma=1e-3, generator=g)


def test_metrics_match_skimage_fastmri_settings():
    skm = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    t = torch.rand(3, 40, 36, dtype=torch.float64, generator=g)
    e = t + 0.1 * torch.randn(3, 40, 36, dtype=torch.float64, generator=g)
    tn, en = t.numpy(), e.numpy()
    dr = tn.max()
    ref_ssim = np.mean([skm.structural_similarity(tn[i], en[i], data_range=dr) for i in range(3)])
    ref_psnr = skm.peak_signal_noise_ratio(tn, en, data_range=dr)
    ref_nmse = np.linalg.norm(tn - en) ** 2 / np.linalg.norm(tn) ** 2
    vol_t, vol_e = t[None], e[None]  # one volume of 3 slices
    assert float(ssim(vol_t, vol_e)[0]) == pytest.approx(ref_ssim, rel=1e-10)
    assert float(psnr(vol_t, vol_e)[0]) == pytest.approx(ref_psnr, rel=1e-10)
    assert float(nmse(vol_t, vol_e)[0]) == pytest.approx(ref_nmse, rel=1e-10)
    # single image, complex input -> magnitude
    ph = torch.exp(1j * torch.rand(40, 36, dtype=torch.float64, generator=g))
    assert float(ssim(t[0] * ph, e[0])) == pytest.approx(
        skm.structural_similarity(tn[0], en[0], data_range=tn[0].max()), rel=1e-10)
    assert float(ssim(t[0], t[0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="estimate"):
        psnr(t, e[:2])


def test_zero_filled_rss_full_sampling_is_rss_of_coil_images():
    x = mri_phantom((N, N), dtype=torch.complex128)
    maps = birdcage_maps((N, N), C, dtype=torch.complex128)
    k = MultiCoilMRI(maps)(x)
    torch.testing.assert_close(zero_filled_rss(k), rss(x * maps, 1)[:, None])
    # maps normalised to RSS 1: the zero-filled RSS of full data is |x|
    torch.testing.assert_close(zero_filled_rss(k), x.abs())


def test_cg_sense_matches_direct_solve():
    n = 12
    op = MultiCoilMRI(birdcage_maps((n, n), 4, dtype=torch.complex128),
                      cartesian_mask((n, n), 3, 0.2, seed=0))
    g = torch.Generator().manual_seed(2)
    y = op(torch.randn(1, 1, n, n, dtype=torch.complex128, generator=g))
    lam = 1e-2
    a = op.to_matrix(dtype=torch.complex128)
    lhs = a.conj().T @ a + lam * torch.eye(n * n, dtype=torch.complex128)
    ref = torch.linalg.solve(lhs, a.conj().T @ y.reshape(-1)).reshape(1, 1, n, n)
    x = cg_sense(op, y, lam=lam, n_iter=200, tol=1e-12)
    torch.testing.assert_close(x, ref, rtol=1e-8, atol=1e-10)


def test_cg_sense_beats_zero_filled(data):
    op, y = data.operator, data.kspace
    x = cg_sense(op, y, lam=1e-3, n_iter=30)
    target = data.image.abs()
    assert float(psnr(target, x.abs())) > float(psnr(target, zero_filled_rss(y))) + 4


def test_cg_sense_batched_independent():
    op = MultiCoilMRI(birdcage_maps((16, 16), 4, dtype=torch.complex128),
                      cartesian_mask((16, 16), 2, 0.25, seed=0))
    g = torch.Generator().manual_seed(1)
    y = op(torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=g))
    both = cg_sense(op, y, lam=1e-3, n_iter=50)
    one = cg_sense(op, y[1:], lam=1e-3, n_iter=50)
    torch.testing.assert_close(both[1:], one)


def test_cg_sense_non_cartesian_recovers_image():
    n = 32
    x = mri_phantom((n, n), dtype=torch.complex128)
    maps = birdcage_maps((n, n), 4, dtype=torch.complex128)
    op = NonCartesianMRI(maps, radial_trajectory(40, 2 * n), backend="finufft")
    xr = cg_sense(op, op(x), lam=0.0, n_iter=100, tol=1e-10)
    # radial sampling misses the k-space corners: compare on the sampled disc
    kx = fft2c(x[0, 0])
    kr = fft2c(xr[0, 0])
    ii, jj = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    disc = (ii**2 + jj**2).double().sqrt() < n / 2 * 0.9
    assert float((kr - kx)[disc].norm() / kx[disc].norm()) < 1e-2
    assert math.isfinite(float(xr.abs().sum()))


def test_l1_wavelet_beats_zero_filled(data):
    op, y = data.operator, data.kspace
    x = l1_wavelet_recon(op, y, lam=1e-4, n_iter=60)
    assert x.shape == (1, 1, N, N) and x.dtype == y.dtype
    target = data.image.abs()
    assert float(ssim(target, x.abs())) > float(ssim(target, zero_filled_rss(y)))


def test_l1_wavelet_non_cartesian_uses_sigpy_coordinates():
    n = 32
    x = mri_phantom((n, n), dtype=torch.complex128)
    maps = birdcage_maps((n, n), 4, dtype=torch.complex128)
    op = NonCartesianMRI(maps, radial_trajectory(24, 2 * n), backend="finufft")
    y = op(x)
    xr = l1_wavelet_recon(op, y, lam=1e-5, n_iter=40)
    # a wrong coordinate mapping (units or axis order) would leave a large data misfit
    assert float((op(xr) - y).norm() / y.norm()) < 0.05
    assert float(ssim(x.abs()[0, 0], xr.abs()[0, 0])) > 0.5
