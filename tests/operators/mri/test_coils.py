"""Coil maps (birdcage, ESPIRiT), noise covariance, pre-whitening and the coil noise model."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.datasets.mri_phantoms import mri_phantom
from diffinv.operators import GaussianNoise
from diffinv.operators.mri import (
    CoilNoise,
    MultiCoilMRI,
    birdcage_maps,
    espirit_maps,
    fft2c,
    fully_sampled_centre,
    noise_covariance,
    poisson_disc_mask,
    prewhiten,
    rss,
    whitening_matrix,
)


def _random_cov(c, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(c, c, dtype=torch.complex128, generator=g)
    return a @ a.conj().T + c * torch.eye(c, dtype=torch.complex128)


def test_birdcage_maps_normalised_and_distinct():
    maps = birdcage_maps((32, 32), 8, dtype=torch.complex128)
    assert maps.shape == (8, 32, 32)
    torch.testing.assert_close(rss(maps, 0), torch.ones(32, 32, dtype=torch.float64))
    # coil 0 sits at angle 0 (right side, +x): brighter on the right than on the left
    assert float(maps[0, 16, -2].abs()) > 2 * float(maps[0, 16, 1].abs())


def test_espirit_recovers_true_maps_inside_object():
    n, c = 48, 8
    x = mri_phantom((n, n), dtype=torch.complex128)
    true = birdcage_maps((n, n), c, dtype=torch.complex128)
    k = fft2c(x[0] * true)  # fully sampled simulated multi-coil k-space
    est = espirit_maps(k, calib_width=20, max_iter=50)
    assert est.shape == true.shape
    obj = x[0, 0].abs() > 0.1
    # ESPIRiT maps are defined up to a phase common to all coils: reference both to coil 0
    ref0 = true * torch.exp(-1j * torch.angle(true[0]))[None]
    est0 = est * torch.exp(-1j * torch.angle(est[0]))[None]
    err = ((est0 - ref0).abs() ** 2).sum(0).sqrt()[obj]  # ||S_true - S_est|| per pixel (norm 1)
    assert float(err.mean()) < 0.02
    assert float(err.max()) < 0.06
    assert float(rss(est, 0)[obj].sub(1).abs().max()) < 0.05
    # only the calibration region is used: undersampled k-space gives the same maps
    mask = poisson_disc_mask((n, n), 3, calib=(20, 20), seed=0)
    est_us = espirit_maps(k * mask, calib_width=20, max_iter=50)
    est_us0 = est_us * torch.exp(-1j * torch.angle(est_us[0]))[None]
    assert float(((est_us0 - ref0).abs() ** 2).sum(0).sqrt()[obj].mean()) < 0.02


def test_noise_covariance_and_prewhitening():
    c, n = 4, 200_000
    cov = _random_cov(c)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(c, n, dtype=torch.complex128, generator=g)
    noise = torch.linalg.cholesky(cov) @ z
    est = noise_covariance(noise, coil_dim=0)
    assert float((est - cov).abs().max() / cov.abs().max()) < 0.02
    white = prewhiten(noise, cov, coil_dim=0)
    torch.testing.assert_close(noise_covariance(white, 0), torch.eye(c, dtype=torch.complex128),
                               atol=0.02, rtol=0)
    wm = whitening_matrix(cov)
    torch.testing.assert_close(wm @ cov @ wm.conj().T, torch.eye(c, dtype=torch.complex128))
    with pytest.raises(ValueError, match="covariance"):
        whitening_matrix(-torch.eye(3))


def test_prewhitened_maps_and_data_are_consistent():
    c = 4
    cov = _random_cov(c, 2)
    maps = birdcage_maps((16, 16), c, dtype=torch.complex128)
    x = mri_phantom((16, 16), dtype=torch.complex128)
    y = MultiCoilMRI(maps)(x)
    y_w = prewhiten(y, cov, coil_dim=1)
    y_ref = MultiCoilMRI(prewhiten(maps, cov, coil_dim=0))(x)
    torch.testing.assert_close(y_w, y_ref)


def test_coil_noise_white_equals_gaussian_noise():
    sigma = 0.3
    y0 = torch.randn(2, 3, 5, 4, dtype=torch.complex128)
    y = y0 + 0.2 * torch.randn_like(y0)
    ours = CoilNoise(2 * sigma**2 * torch.eye(3))
    ref = GaussianNoise(sigma)
    torch.testing.assert_close(ours.log_likelihood(y, y0), ref.log_likelihood(y, y0))
    torch.testing.assert_close(ours.chi2(y, y0), ref.chi2(y, y0))
    assert ours.n_data(y) == ref.n_data(y)


def test_coil_noise_log_likelihood_matches_real_multivariate_normal():
    c = 3
    cov = _random_cov(c, 3)
    y0 = torch.randn(1, c, 2, 2, dtype=torch.complex128)
    y = y0 + torch.randn_like(y0)
    ll = CoilNoise(cov).log_likelihood(y, y0)
    # independent reference: real 2c-dim Gaussian per sample with covariance
    # 1/2 [[Re S, -Im S], [Im S, Re S]]
    real_cov = 0.5 * torch.cat([torch.cat([cov.real, -cov.imag], 1),
                                torch.cat([cov.imag, cov.real], 1)], 0)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(2 * c, dtype=torch.float64),
                                                 covariance_matrix=real_cov)
    r = (y - y0)[0].reshape(c, -1).T  # (samples, coils)
    ref = mvn.log_prob(torch.cat([r.real, r.imag], 1)).sum()
    assert float(ll[0]) == pytest.approx(float(ref), rel=1e-10)


def test_coil_noise_sampling_statistics_and_mask():
    c = 3
    cov = _random_cov(c, 4)
    mask = torch.zeros(40, 50, dtype=torch.bool)
    mask[:, ::2] = True
    model = CoilNoise(cov, mask=mask)
    y0 = torch.zeros(20, c, 40, 50, dtype=torch.complex128)
    g = torch.Generator().manual_seed(0)
    y = model.sample(y0, generator=g)
    assert bool((y[:, :, ~mask] == 0).all())
    samples = y[:, :, mask].permute(1, 0, 2).reshape(c, -1)
    est = samples @ samples.conj().T / samples.shape[1]
    assert float((est - cov).abs().max() / cov.abs().max()) < 0.05
    assert model.n_data(y) == 2 * c * int(mask.sum())
    chi = model.chi2(y, y0) / model.n_data(y)
    assert abs(float(chi.mean()) - 1) < 0.02
    assert math.isfinite(float(model.log_likelihood(y, y0)[0]))


def test_coil_noise_errors():
    with pytest.raises(ValueError, match="covariance"):
        CoilNoise(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="covariance"):
        CoilNoise(torch.ones(2, 3))
    with pytest.raises(ValueError, match="coils"):
        CoilNoise(torch.eye(2)).log_likelihood(torch.zeros(1, 3, 4, dtype=torch.complex64),
                                               torch.zeros(1, 3, 4, dtype=torch.complex64))


def test_espirit_detects_or_refuses_the_calibration_region():
    n, c = 32, 4
    x = mri_phantom((n, n), dtype=torch.complex128)
    k = fft2c(x[0] * birdcage_maps((n, n), c, dtype=torch.complex128))
    mask = torch.rand(n, n, generator=torch.Generator().manual_seed(0)) < 0.3
    mask[n // 2 - 6 : n // 2 + 6, n // 2 - 6 : n // 2 + 6] = True
    assert fully_sampled_centre(k) == n
    found = fully_sampled_centre(k * mask)
    assert 12 <= found < n
    # the detected square really is fully sampled and one more sample is not
    h0 = n // 2 - found // 2
    assert bool(mask[h0 : h0 + found, h0 : h0 + found].all())
    auto = espirit_maps(k * mask, max_iter=20)
    explicit = espirit_maps(k * mask, calib_width=min(found, 24), max_iter=20)
    torch.testing.assert_close(auto, explicit)
    with pytest.raises(ValueError, match=f"calib_width: .*not fully sampled.*{found} x {found}"):
        espirit_maps(k * mask, calib_width=found + 2, max_iter=20)
    no_centre = k.clone()
    no_centre[:, n // 2 - 2 : n // 2 + 2, :] = 0  # centre lines missing
    with pytest.raises(ValueError, match="kspace: the fully sampled centre is only 0 x 0"):
        espirit_maps(no_centre, max_iter=20)
