"""Phase-retrieval noise models and ambiguity-aware metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from diffinv.operators.phase_retrieval import (
    AmplitudeGaussianNoise,
    FourierPhaseRetrieval,
    PhotonNoise,
    align,
    flux_for_photons,
    nrmse,
    psnr,
    ssim,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- noise -------------------------------------------------------------------------------------
def test_photon_noise_log_likelihood_matches_scipy():
    flux = 50.0
    noise = PhotonNoise(flux)
    clean = torch.rand(2, 1, 4, 4, dtype=torch.float64, generator=_gen()) * 3
    y = noise.sample(clean, generator=_gen(1))
    counts = (y * flux).numpy()
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)  # whole photons
    ref = stats.poisson.logpmf(np.round(counts), (clean * flux).numpy()).reshape(2, -1).sum(1)
    np.testing.assert_allclose(noise.log_likelihood(y, clean).numpy(), ref, rtol=1e-10)


def test_photon_noise_statistics_and_flux_helper():
    clean = torch.full((1, 1, 64, 64), 0.2, dtype=torch.float64)
    flux = flux_for_photons(clean, photons=4096 * 10)  # 10 photons per pixel
    assert math.isclose(flux, 50.0)
    y = PhotonNoise(flux).sample(clean.expand(64, -1, -1, -1), generator=_gen(2))
    k = y * flux
    # Poisson: mean = variance = 10 photons (262144 draws; 5-sigma bounds)
    assert abs(float(k.mean()) - 10.0) < 5 * math.sqrt(10 / k.numel())
    assert abs(float(k.var()) - 10.0) < 5 * 10 * math.sqrt(2 / k.numel()) * 1.5
    with pytest.raises(ValueError, match="flux"):
        PhotonNoise(0.0)


def test_amplitude_gaussian_noise_is_a_normalised_density():
    noise = AmplitudeGaussianNoise(0.3)
    clean = torch.tensor([[0.5]], dtype=torch.float64)
    # integrate the density of y numerically over a fine grid: it must be 1
    grid = torch.linspace(-6, 12, 400001, dtype=torch.float64)
    ll = torch.stack([noise.log_likelihood(v.reshape(1, 1), clean)[0] for v in grid[::400]])
    dens = torch.exp(ll)
    integral = torch.trapezoid(dens, grid[::400])
    assert abs(float(integral) - 1.0) < 2e-2
    # sampling: sign(y) sqrt|y| - sqrt(I) is N(0, sigma^2)
    y = noise.sample(clean.expand(20000, 1), generator=_gen(3))
    a = AmplitudeGaussianNoise.amplitude(y) - math.sqrt(0.5)
    assert abs(float(a.mean())) < 5 * 0.3 / math.sqrt(20000)
    assert abs(float(a.std()) - 0.3) < 0.01
    assert math.isclose(AmplitudeGaussianNoise.from_flux(100.0).sigma, 0.05)


# -- metrics -----------------------------------------------------------------------------------
def _object(complex_obj=False, seed=0):
    g = _gen(seed)
    x = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    x[..., 3:11, 4:12] = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=g)
    if complex_obj:
        x = x * torch.exp(1j * torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=g))
    return x


@pytest.mark.parametrize("complex_obj", [False, True])
def test_metrics_invariant_to_trivial_ambiguities(complex_obj):
    x = _object(complex_obj)
    phase = torch.tensor(-1.0 if not complex_obj else np.exp(1.1j))
    variants = {
        "global phase": x * phase,
        "translation": torch.roll(x, (2, -3), (-2, -1)),
        "twin": torch.flip(x, (-2, -1)).conj(),
        "all": torch.roll(torch.flip(x, (-2, -1)).conj(), (-1, 2), (-2, -1)) * phase,
    }
    for name, v in variants.items():
        assert float(nrmse(v, x).max()) < 1e-12, name
        assert float(psnr(v, x).min()) > 200.0, name  # inf up to rounding of the phase
        assert float((ssim(v, x) - 1).abs().max()) < 1e-12, name
        torch.testing.assert_close(align(v, x), x.to(align(v, x).dtype))


def test_metrics_respect_disabled_ambiguities():
    x = _object()
    twin = torch.flip(x, (-2, -1))
    assert float(nrmse(twin, x, twin=False).min()) > 0.1
    shifted = torch.roll(x, (2, 1), (-2, -1))
    assert float(nrmse(shifted, x, translation=False).min()) > 0.1
    assert float(nrmse(-x, x, global_phase=False, translation=False, twin=False).min()) > 1.99
    # periodic shifts of a full-frame object are recovered only with circular=True
    full = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=_gen(4))
    rolled = torch.roll(full, (5, 7), (-2, -1))
    assert float(nrmse(rolled, full, circular=True)) < 1e-12
    assert float(nrmse(rolled, full)) > 0.1


def test_nrmse_is_the_minimum_over_shifts_brute_force():
    """Zero-filled linear shifts: compare with an explicit search."""
    g = _gen(5)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=g)
    z = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=g)
    best = math.inf
    for cand in (z, torch.flip(z, (-2, -1))):
        for si in range(-7, 8):
            for sj in range(-7, 8):
                canvas = torch.zeros(1, 1, 24, 24, dtype=torch.float64)
                canvas[..., 8:16, 8:16] = cand
                sh = canvas[..., 8 + si:16 + si, 8 + sj:16 + sj]
                for sign in (1.0, -1.0):
                    best = min(best, float((sign * sh - x).norm() / x.norm()))
    assert math.isclose(float(nrmse(z, x)), best, rel_tol=1e-9)


def test_plain_metrics_match_skimage():
    g = _gen(6)
    a = torch.rand(2, 1, 20, 24, dtype=torch.float64, generator=g)
    b = a + 0.1 * torch.randn(2, 1, 20, 24, dtype=torch.float64, generator=g)
    none = dict(global_phase=False, translation=False, twin=False)
    for i in range(2):
        ref_ssim = structural_similarity(b[i, 0].numpy(), a[i, 0].numpy(), gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False, data_range=1.0)
        ref_psnr = peak_signal_noise_ratio(a[i, 0].numpy(), b[i, 0].numpy(), data_range=1.0)
        assert math.isclose(float(ssim(b, a, data_range=1.0, **none)[i]), ref_ssim, rel_tol=1e-9)
        assert math.isclose(float(psnr(b, a, data_range=1.0, **none)[i]), ref_psnr, rel_tol=1e-9)


def test_metric_input_validation():
    x = _object()
    with pytest.raises(ValueError, match="x_true"):
        nrmse(x, x[:, :, :8])
    with pytest.raises(ValueError, match="x_hat"):
        nrmse(x[0], x)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        psnr(bad, x)


def test_metrics_on_reconstruction_from_data():
    """An object and its twin/shifted version give identical data and identical scores."""
    op = FourierPhaseRetrieval(16)
    x = _object()
    other = torch.roll(torch.flip(x, (-2, -1)), (1, 1), (-2, -1))
    torch.testing.assert_close(op(other), op(x))
    assert float(nrmse(other, x).max()) < 1e-12


def test_photon_problem_reduced_chi2_is_one_at_the_truth():
    from diffinv.operators import InverseProblem

    op = FourierPhaseRetrieval(16)
    x = _object()[:1] + 0.5  # no zero-intensity pixels
    clean = op(x)
    flux = flux_for_photons(clean, photons=1024 * 500)  # ~500 photons per pixel
    noise = PhotonNoise(flux)
    problem = InverseProblem(op, noise, noise.sample(clean, generator=_gen(7)))
    red = float(problem.reduced_chi2(x)[0])
    assert abs(red - 1.0) < 5 * math.sqrt(2 / 1024)  # chi^2 with 1024 degrees of freedom
    # a wrong object fits far worse
    assert float(problem.reduced_chi2(x * 1.1)[0]) > 2.0
