import math

import numpy as np
import pytest
import torch

from diffinv.operators.interferometry import Array, Observation
from diffinv.operators.interferometry.observation import (
    greenwich_sidereal_angle,
    uv_from_baselines,
)

M87 = (187.7059307575226, 12.39112323919932)


def _sim(**kw):
    args = dict(integration_s=60.0, scan_interval_s=1200.0)
    args.update(kw)
    return Observation.simulate(Array.eht2017(), *M87, "2017-04-05", **args)


def test_simulate_m87_eht2017():
    obs = _sim()
    # the South Pole never sees M87 (dec +12 deg) above 10 degrees
    assert "SP" not in obs.present_stations()
    assert {"AA", "AP", "AZ", "JC", "LM", "PV", "SM"} <= set(obs.present_stations())
    assert bool((obs.t1 < obs.t2).all())
    # |(u, v)| <= |b| / lambda for every point, and the longest baselines reach ~8 G lambda
    arr = Array.eht2017()
    b = np.linalg.norm(arr.positions[obs.t1.numpy()] - arr.positions[obs.t2.numpy()], axis=1)
    uvd = np.hypot(obs.u.numpy(), obs.v.numpy())
    assert np.all(uvd <= b / obs.wavelength_m * (1 + 1e-12))
    assert 7e9 < uvd.max() < 9e9
    # lower elevation limit -> more data, a superset of the times
    more = _sim(elevation_limits_deg=(0.0, 90.0))
    assert len(more) > len(obs)


def test_simulate_scan_structure():
    obs = _sim(integration_s=10.0, scan_duration_s=60.0)
    for s in torch.unique(obs.scan).tolist():
        t = torch.unique(obs.time[obs.scan == s])
        assert len(t) <= 6
        assert float(t.max() - t.min()) * 3600 <= 50.0 + 1e-6
    with pytest.raises(ValueError, match="integration_s"):
        _sim(integration_s=0.0)
    with pytest.raises(ValueError, match="array"):
        Observation.simulate("EHT", *M87, "2017-04-05")


def test_uv_geometry_matches_uvfits_file(shared_data):
    """Our (u, v) from station positions and time reproduce those stored by the correlator."""
    from astropy.io import fits
    from astropy.time import Time

    path = shared_data("eht2017_m87") / "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits"
    with fits.open(path) as h:
        d = h[0].data
        freq = h[0].header["CRVAL4"]
        pos = {int(n): np.array(x) for n, x in zip(h[1].data["NOSTA"], h[1].data["STABXYZ"])}
        sel = np.arange(0, len(d), 97)
        jd = d.par(4)[sel].astype(np.float64) + d.par(5)[sel].astype(np.float64)
        bl = d.par(3)[sel].astype(int)
        u_file = d.par(0)[sel].astype(np.float64) * freq
        v_file = d.par(1)[sel].astype(np.float64) * freq
    b = np.array([pos[k // 256] - pos[k % 256] for k in bl])
    ha = greenwich_sidereal_angle(Time(jd, format="jd", scale="utc")) - math.radians(M87[0])
    u, v = uv_from_baselines(b, ha, math.radians(M87[1]), freq)
    scale = np.hypot(u_file, v_file).max()
    assert np.max(np.abs(u - u_file)) / scale < 1e-4
    assert np.max(np.abs(v - v_file)) / scale < 1e-4


def _toy():
    n = 6
    return Observation(
        stations=("A", "B", "C"),
        sefds=np.array([1.0, 1.0, 1.0]),
        time=torch.tensor([0.0, 0.0, 0.01, 0.01, 1.0, 1.0], dtype=torch.float64),
        t1=torch.tensor([0, 1, 0, 0, 0, 2]),
        t2=torch.tensor([1, 2, 1, 1, 1, 1]),
        u=torch.arange(n, dtype=torch.float64),
        v=-torch.arange(n, dtype=torch.float64),
        vis=torch.tensor([1 + 1j, 2j, 3, 1 + 0j, 5, 1 + 2j], dtype=torch.complex128),
        sigma=torch.tensor([1.0, 1.0, 2.0, 1.0, 1.0, 0.0], dtype=torch.float64),
        scan=torch.zeros(n, dtype=torch.long),
        tint=torch.full((n,), 10.0, dtype=torch.float64),
        ra_deg=0.0,
        dec_deg=0.0,
        mjd=57848,
        frequency_hz=230e9,
        bandwidth_hz=2e9,
    )


def test_conjugate_handling_flagging_and_scans():
    obs = _toy()
    # (C, B) was stored as (B, C): conjugated visibility and negated (u, v)
    assert obs.t1[5] == 1 and obs.t2[5] == 2
    assert complex(obs.vis[5]) == 1 - 2j and float(obs.u[5]) == -5.0 and float(obs.v[5]) == 5.0
    flagged = obs.flag()
    assert len(flagged) == 5  # zero sigma removed
    scans = flagged.with_scans(gap_s=120.0)
    assert scans.scan.tolist() == [0, 0, 0, 0, 1]
    avg = scans.average_scans()
    # A-B in scan 0: records (1+1j, s=1), (3, s=2), (1, s=1): weights 1, 1/4, 1
    w = np.array([1.0, 0.25, 1.0])
    expected = (w * np.array([1 + 1j, 3, 1])).sum() / w.sum()
    ab = (avg.t1 == 0) & (avg.t2 == 1) & (avg.scan == 0)
    assert complex(avg.vis[ab][0]) == pytest.approx(expected)
    assert float(avg.sigma[ab][0]) == pytest.approx(1 / math.sqrt(w.sum()))
    assert len(avg) == 3
    both = obs.with_conjugates()
    assert len(both) == 2 * len(obs)
    assert torch.equal(both.vis[len(obs) :], obs.vis.conj())


def test_read_uvfits_m87(shared_data):
    root = shared_data("eht2017_m87")
    for name in (
        "SR1_M87_2017_095_lo_hops_netcal_StokesI.uvfits",
        "SR1_M87_2017_096_hi_hops_netcal_StokesI.uvfits",
    ):
        obs = Observation.from_uvfits(root / name)
        assert obs.source == "M87"
        assert set(obs.present_stations()) == {"AA", "AP", "AZ", "JC", "LM", "PV", "SM"}
        assert 4000 < len(obs) < 10000
        assert 220e9 < obs.frequency_hz < 232e9
        assert obs.ra_deg == pytest.approx(187.7059, abs=1e-3)
        assert bool((obs.sigma > 0).all()) and bool(torch.isfinite(obs.vis).all())
        # total compact flux ~0.5-0.7 Jy on the short ALMA-APEX baseline... (intra-site)
        aa, ap = obs.stations.index("AA"), obs.stations.index("AP")
        short = (obs.t1 == aa) & (obs.t2 == ap)
        assert 0.3 < float(obs.vis[short].abs().median()) < 1.5
        n_scans = int(torch.unique(obs.scan).numel())
        assert 10 <= n_scans <= 40
        avg = obs.average_scans()
        assert len(avg) < len(obs) and float(avg.sigma.median()) < float(obs.sigma.median())
    with pytest.raises(FileNotFoundError, match="path"):
        Observation.from_uvfits(root / "nope.uvfits")


def test_systematic_noise():
    obs = _toy().flag()
    sys_obs = obs.with_systematic_noise(0.1)
    expected = torch.sqrt(obs.sigma**2 + (0.1 * obs.vis.abs()) ** 2)
    torch.testing.assert_close(sys_obs.sigma, expected)
    assert torch.equal(obs.sigma, _toy().flag().sigma)  # original untouched
    with pytest.raises(ValueError, match="fraction"):
        obs.with_systematic_noise(-0.1)
