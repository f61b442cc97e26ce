"""Noise models: log-likelihoods against scipy, sampling statistics, validation."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffinv.operators import GaussianNoise, PoissonNoise, check_finite

g = torch.Generator().manual_seed(3)


def test_gaussian_log_likelihood_matches_scipy():
    y0 = torch.randn(2, 10, dtype=torch.float64, generator=g)
    y = y0 + 0.3 * torch.randn(2, 10, dtype=torch.float64, generator=g)
    ll = GaussianNoise(0.3).log_likelihood(y, y0)
    ref = stats.norm(y0.numpy(), 0.3).logpdf(y.numpy()).sum(1)
    np.testing.assert_allclose(ll.numpy(), ref, rtol=1e-12)


def test_gaussian_per_measurement_sigma_and_complex():
    sigma = torch.linspace(0.1, 1.0, 6, dtype=torch.float64)
    y0 = torch.randn(3, 6, dtype=torch.complex128, generator=g)
    y = y0 + torch.randn(3, 6, dtype=torch.complex128, generator=g)
    ll = GaussianNoise(sigma).log_likelihood(y, y0)
    s = sigma.numpy()
    ref = (
        stats.norm(y0.real.numpy(), s).logpdf(y.real.numpy())
        + stats.norm(y0.imag.numpy(), s).logpdf(y.imag.numpy())
    ).sum(1)
    np.testing.assert_allclose(ll.numpy(), ref, rtol=1e-12)


def test_complex_gaussian_sample_has_sigma_per_component():
    noise = GaussianNoise(0.5)
    y0 = torch.zeros(1, 200_000, dtype=torch.complex128)
    n = noise.sample(y0, generator=g)
    assert float(n.real.std()) == pytest.approx(0.5, rel=0.01)
    assert float(n.imag.std()) == pytest.approx(0.5, rel=0.01)
    chi2 = noise.chi2(n, y0)
    assert float(chi2 / noise.n_data(n)) == pytest.approx(1.0, abs=0.01)


def test_poisson_log_likelihood_matches_scipy_and_sample_is_unbiased():
    noise = PoissonNoise(gain=0.5)
    y0 = torch.rand(2, 50, dtype=torch.float64, generator=g) * 20
    y = noise.sample(y0, generator=g)
    k = (y / 0.5).numpy()
    assert np.allclose(k, np.round(k))
    ref = stats.poisson(y0.numpy() / 0.5).logpmf(k).sum(1)
    np.testing.assert_allclose(noise.log_likelihood(y, y0).numpy(), ref, rtol=1e-10)
    big = noise.sample(torch.full((1, 100_000), 3.0, dtype=torch.float64), generator=g)
    assert float(big.mean()) == pytest.approx(3.0, rel=0.01)
    assert float(big.var()) == pytest.approx(0.5 * 3.0, rel=0.03)


def test_noise_models_reject_bad_parameters():
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="sigma"):
            GaussianNoise(bad)
    with pytest.raises(ValueError, match="gain"):
        PoissonNoise(gain=0.0)
    with pytest.raises(ValueError, match="y_clean"):
        PoissonNoise().sample(torch.ones(1, 3, dtype=torch.complex64))


def test_check_finite_names_the_argument():
    with pytest.raises(ValueError, match="^kspace: contains NaN"):
        check_finite("kspace", torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="kspace"):
        check_finite("kspace", torch.tensor([float("inf")]))
    check_finite("kspace", torch.ones(3))


def test_masked_gaussian_noise_counts_only_measured_entries():
    """Masked entries get no noise and drop out of chi^2, n_data, log p and the norm: the
    figures equal those of the measured entries alone (checked against scipy)."""
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    sigma = torch.tensor([[0.5, 1.0, 2.0], [0.3, 0.7, 1.1]], dtype=torch.float64)
    noise = GaussianNoise(sigma, mask=mask)
    clean = torch.randn(4, 2, 3, dtype=torch.float64, generator=g)
    y = noise.sample(clean, g)
    assert torch.equal(y[:, ~mask], clean[:, ~mask]) and not torch.equal(y[:, mask],
                                                                         clean[:, mask])
    y = y.clone()
    y[:, ~mask] += 100.0  # whatever sits in unmeasured entries is ignored
    ref = stats.norm.logpdf(y[:, mask].numpy(), clean[:, mask].numpy(),
                            sigma[mask].numpy()).sum(1)
    assert np.allclose(noise.log_likelihood(y, clean).numpy(), ref)
    chi2 = (((y - clean) / sigma)[:, mask] ** 2).sum(1)
    assert torch.allclose(noise.chi2(y, clean), chi2)
    assert noise.n_data(y) == 4
    assert torch.allclose(noise.residual_norm(y, clean), (y - clean)[:, mask].norm(dim=1))
    zc = torch.complex(clean, clean)
    assert GaussianNoise(0.5, mask=mask).n_data(zc) == 8  # complex counts twice


def test_masked_gaussian_noise_errors():
    with pytest.raises(ValueError, match="mask"):
        GaussianNoise(1.0, mask=torch.ones(3))  # not boolean
    with pytest.raises(ValueError, match="mask"):
        GaussianNoise(1.0, mask=torch.zeros(3, dtype=torch.bool))  # nothing measured
    with pytest.raises(ValueError, match="mask"):
        GaussianNoise(1.0, mask=torch.ones(4, dtype=torch.bool)).chi2(torch.zeros(1, 3),
                                                                      torch.zeros(1, 3))
