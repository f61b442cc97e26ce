import numpy as np
import pytest
import torch

from diffinv.operators.interferometry import (
    Array,
    Observation,
    add_thermal_noise,
    apply_station_gains,
    random_station_gains,
    thermal_sigma,
)


def test_thermal_sigma_formula():
    # ALMA-LMT, 2 GHz, 10 s: sqrt(90 * 600 / (2 * 2e9 * 10)) / 0.88
    expected = np.sqrt(90 * 600 / (2 * 2e9 * 10)) / 0.88
    assert thermal_sigma(90, 600, 2e9, 10.0) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="integration_s"):
        thermal_sigma(90, 600, 2e9, 0.0)


def _obs():
    return Observation.simulate(
        Array.eht2017(),
        187.7059,
        12.3911,
        "2017-04-05",
        integration_s=30.0,
        scan_interval_s=1200.0,
        scan_duration_s=120.0,
    )


def test_simulated_sigmas_follow_sefds():
    obs = _obs()
    arr = Array.eht2017()
    s1 = arr.sefds[[arr.index(obs.stations[i]) for i in obs.t1.tolist()]]
    s2 = arr.sefds[[arr.index(obs.stations[i]) for i in obs.t2.tolist()]]
    np.testing.assert_allclose(obs.sigma.numpy(), np.sqrt(s1 * s2 / (2 * 2e9 * 30.0)) / 0.88)


def test_thermal_noise_statistics():
    obs = _obs()
    g = torch.Generator().manual_seed(0)
    vis = torch.zeros(2000, len(obs), dtype=torch.complex128)
    noisy = add_thermal_noise(obs, vis, generator=g)
    std_re = noisy.real.std(0) / obs.sigma
    std_im = noisy.imag.std(0) / obs.sigma
    assert float(std_re.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(std_im.mean()) == pytest.approx(1.0, abs=0.01)


def test_station_gains_multiply_per_scan():
    obs = _obs()
    g = torch.Generator().manual_seed(1)
    gains = random_station_gains(obs, amplitude_std=0.2, generator=g)
    assert gains.shape == (int(obs.scan.max()) + 1, len(obs.stations))
    vis = torch.ones(1, len(obs), dtype=torch.complex128)
    out = apply_station_gains(obs, vis, gains)
    k = 5
    s, i, j = int(obs.scan[k]), int(obs.t1[k]), int(obs.t2[k])
    assert complex(out[0, k]) == pytest.approx(complex(gains[s, i] * gains[s, j].conj()))
    assert torch.equal(vis, torch.ones(1, len(obs), dtype=torch.complex128))  # input untouched
