import itertools
import math

import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.operators.interferometry import (
    Array,
    Observation,
    add_thermal_noise,
    apply_station_gains,
    random_station_gains,
)
from diffinv.operators.interferometry.closures import (
    ClosurePhaseNoise,
    ClosurePhases,
    LogClosureAmplitudes,
    closure_phase_chi2,
    closure_quadrangles,
    closure_triangles,
    log_closure_amplitude_chi2,
)
from diffinv.operators.interferometry.visibilities import Visibilities
from diffinv.operators.problem import InverseProblem

M87 = (187.7059307575226, 12.39112323919932)


def _observed(seed=0, noise=True):
    obs = Observation.simulate(
        Array.eht2017(), *M87, "2017-04-05", integration_s=60.0, scan_interval_s=1200.0
    )
    x = crescent_image(32, 160.0, 42.0, 10.0, 0.6, 180.0, dtype=torch.float64)
    vis = Visibilities(obs, 32, 160.0)(x)
    if noise:
        vis = add_thermal_noise(obs, vis, torch.Generator().manual_seed(seed))
    return obs.with_data(vis), x


def _full_scan(n_st):
    """All baselines of n stations at one time."""
    i1, i2 = torch.triu_indices(n_st, n_st, 1)
    m = i1.numel()
    g = torch.Generator().manual_seed(n_st)
    return Observation(
        stations=tuple(f"S{k}" for k in range(n_st)),
        sefds=torch.ones(n_st).numpy(),
        time=torch.zeros(m, dtype=torch.float64),
        t1=i1,
        t2=i2,
        u=torch.randn(m, dtype=torch.float64, generator=g) * 1e9,
        v=torch.randn(m, dtype=torch.float64, generator=g) * 1e9,
        vis=torch.randn(m, dtype=torch.complex128, generator=g) + 2,
        sigma=torch.rand(m, dtype=torch.float64, generator=g) * 0.1 + 0.01,
        scan=torch.zeros(m, dtype=torch.long),
        tint=torch.ones(m, dtype=torch.float64),
        ra_deg=0.0,
        dec_deg=0.0,
        mjd=0,
        frequency_hz=230e9,
        bandwidth_hz=2e9,
    )


@pytest.mark.parametrize("n_st", [3, 4, 5, 6, 7, 8])
def test_number_of_independent_closures(n_st):
    obs = _full_scan(n_st)
    tri, sign = closure_triangles(obs)
    quad = closure_quadrangles(obs)
    assert tri.shape == ((n_st - 1) * (n_st - 2) // 2, 3)
    assert quad.shape == (n_st * (n_st - 3) // 2, 4)
    # independence: the closure rows have full rank in baseline space
    a = torch.zeros(tri.shape[0], len(obs), dtype=torch.float64)
    a.scatter_(1, tri, sign)
    assert int(torch.linalg.matrix_rank(a)) == tri.shape[0]
    b = torch.zeros(quad.shape[0], len(obs), dtype=torch.float64)
    b.scatter_(
        1,
        quad,
        torch.tensor([[1.0, 1.0, -1.0, -1.0]], dtype=torch.float64).expand(quad.shape[0], 4),
    )
    assert int(torch.linalg.matrix_rank(b)) == quad.shape[0]
    # maximality: every triangle is a combination of the chosen ones
    pairs = {(int(i), int(j)): k for k, (i, j) in enumerate(zip(obs.t1, obs.t2))}
    for p, q, r in itertools.combinations(range(n_st), 3):
        row = torch.zeros(1, len(obs), dtype=torch.float64)
        row[0, pairs[(p, q)]], row[0, pairs[(q, r)]], row[0, pairs[(p, r)]] = 1, 1, -1
        assert int(torch.linalg.matrix_rank(torch.cat([a, row]))) == tri.shape[0]


def test_closures_invariant_to_station_gains():
    obs, _ = _observed(noise=False)
    cp = ClosurePhases(obs, 32, 160.0)
    lca = LogClosureAmplitudes(obs, 32, 160.0)
    assert cp.out_shape[0] > 50 and lca.out_shape[0] > 30
    g = torch.Generator().manual_seed(3)
    gains = random_station_gains(obs, amplitude_std=0.3, phase_std_deg=180.0, generator=g)
    corrupted = apply_station_gains(obs, obs.vis[None], gains)
    assert float((corrupted[0] - obs.vis).abs().max()) > 0.01  # the gains did something
    d_cp = torch.angle(torch.exp(1j * (cp.from_visibilities(corrupted)[0] - cp.data)))
    assert float(d_cp.abs().max()) < 1e-10
    assert float((lca.from_visibilities(corrupted)[0] - lca.data).abs().max()) < 1e-10


def test_chi2_formulas_and_values():
    obs, x = _observed()
    cp = ClosurePhases(obs, 32, 160.0)
    model = cp(x)[0]
    d = cp.data - model
    expected = (2.0 / d.numel()) * ((1 - torch.cos(d)) / cp.sigma**2).sum()
    assert float(closure_phase_chi2(model, cp.data, cp.sigma)) == pytest.approx(float(expected))
    # the truth fits the noisy data at the noise level; a point source does not
    assert 0.6 < float(closure_phase_chi2(model, cp.data, cp.sigma)) < 1.5
    lca = LogClosureAmplitudes(obs, 32, 160.0)
    r = log_closure_amplitude_chi2(lca(x)[0], lca.data, lca.sigma)
    assert 0.6 < float(r) < 1.5
    batch = torch.stack([model, model + 0.1])
    out = closure_phase_chi2(batch, cp.data, cp.sigma)
    assert out.shape == (2,) and float(out[1]) > float(out[0])


def test_closure_phase_sigma_matches_monte_carlo():
    obs, _ = _observed(noise=False)
    cp = ClosurePhases(obs, 32, 160.0)
    g = torch.Generator().manual_seed(5)
    noisy = add_thermal_noise(obs, obs.vis.expand(4000, -1).clone(), g)
    spread = torch.angle(torch.exp(1j * (cp.from_visibilities(noisy) - cp.data))).std(0)
    high_snr = cp.sigma < 0.1
    ratio = spread[high_snr] / cp.sigma[high_snr]
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.05)


def test_closure_problem_likelihood_and_gradient():
    obs, x = _observed()
    cp = ClosurePhases(obs, 32, 160.0)
    problem = InverseProblem(cp, cp.noise(), cp.data[None].float())
    x32 = x.float()
    assert float(problem.reduced_chi2(x32)[0]) == pytest.approx(
        float(closure_phase_chi2(cp(x)[0], cp.data, cp.sigma)), rel=1e-3
    )
    ll, grad = problem.grad_log_likelihood(x32.expand(2, -1, -1, -1))
    assert grad.shape == (2, 1, 32, 32) and bool(torch.isfinite(grad).all())
    noise = ClosurePhaseNoise(cp.sigma)
    y = noise.sample(
        torch.full((1, cp.out_shape[0]), 3.1, dtype=torch.float64), torch.Generator().manual_seed(0)
    )
    assert float(y.abs().max()) <= math.pi


def test_m87_closure_phases_prefer_ring_over_point(shared_data):
    root = shared_data("eht2017_m87")
    obs = Observation.from_uvfits(root / "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits")
    obs = obs.average_scans()
    cp = ClosurePhases(obs, 64, 160.0)
    lca = LogClosureAmplitudes(obs, 64, 160.0)
    assert 50 < cp.out_shape[0] < 200 and 40 < lca.out_shape[0] < 200
    point = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    point[0, 0, 31:33, 31:33] = 0.15  # symmetric: zero closure phases
    ring = crescent_image(64, 160.0, 42.0, 10.0, 0.5, 180.0, dtype=torch.float64)
    chi_point = float(closure_phase_chi2(cp(point)[0], cp.data, cp.sigma))
    chi_ring = float(closure_phase_chi2(cp(ring)[0], cp.data, cp.sigma))
    assert chi_ring < chi_point / 5
    # published orientation: bright in the south; the same crescent bright in the north is
    # far worse (this fixes the Fourier sign convention against the real data)
    north = crescent_image(64, 160.0, 42.0, 10.0, 0.5, 0.0, dtype=torch.float64)
    assert float(closure_phase_chi2(cp(north)[0], cp.data, cp.sigma)) > 5 * chi_ring
    chi_lca_ring = float(log_closure_amplitude_chi2(lca(ring)[0], lca.data, lca.sigma))
    chi_lca_point = float(log_closure_amplitude_chi2(lca(point)[0], lca.data, lca.sigma))
    assert chi_lca_ring < chi_lca_point / 3


def test_amplitude_debiasing_and_log_amplitude_bias():
    from diffinv.operators.interferometry.closures import debiased_amplitudes

    g = torch.Generator().manual_seed(7)
    true_amp, sigma = 1.0, 0.4
    noise = torch.complex(
        torch.randn(400000, dtype=torch.float64, generator=g),
        torch.randn(400000, dtype=torch.float64, generator=g),
    )
    vis = true_amp + sigma * noise
    raw = vis.abs()
    deb = debiased_amplitudes(vis, torch.tensor(sigma, dtype=torch.float64))
    # Rice bias E|V| - A ~ sigma^2 / (2 A) = 0.08; debiasing removes most of it
    assert float(raw.mean()) - true_amp > 0.06
    assert abs(float(deb.mean()) - true_amp) < 0.02
    # ln|V| is unbiased to second order, which is why log closure amplitudes are not debiased
    assert abs(float(torch.log(raw).mean())) < 0.01
    obs, _ = _observed()
    plain = LogClosureAmplitudes(obs, 32, 160.0)
    debiased = LogClosureAmplitudes(obs, 32, 160.0, debias=True)
    assert torch.equal(plain.index, debiased.index)
    assert float((plain.data - debiased.data).abs().max()) > 0


def test_closure_operator_gradients():
    from diffinv.operators.testing import check_gradient

    obs = Observation.simulate(
        Array.eht2017(), *M87, "2017-04-05", integration_s=60.0, scan_interval_s=7200.0
    )
    x = crescent_image(8, 160.0, 42.0, 20.0, 0.5, 180.0, dtype=torch.float64)
    obs = obs.with_data(Visibilities(obs, 8, 160.0)(x))
    x0 = x + 0.001 * torch.rand(
        x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    assert check_gradient(ClosurePhases(obs, 8, 160.0), (1, 1, 8, 8), x=x0)
    assert check_gradient(LogClosureAmplitudes(obs, 8, 160.0), (1, 1, 8, 8), x=x0)


def test_closures_reject_non_finite_data():
    obs, _ = _observed()
    bad = obs.select(torch.ones(len(obs), dtype=torch.bool))
    bad.vis = bad.vis.clone()
    bad.vis[3] = float("nan")
    with pytest.raises(ValueError, match="vis"):
        ClosurePhases(bad, 32, 160.0)
    with pytest.raises(ValueError, match="vis"):
        LogClosureAmplitudes(bad, 32, 160.0)
    assert bool(torch.isfinite(obs.vis).all())  # the original is untouched
