"""UVFITS reading on a small synthetic random-groups file (two IFs, RR/LL, flags)."""

import numpy as np
import pytest
import torch
from astropy.io import fits

from diffinv.operators.interferometry import Observation

FREQ = 230e9


def _write(path, vis_rr, vis_ll, w_rr, w_ll, baselines, jd, u_sec):
    g = len(baselines)
    # data axes (numpy order): DEC, RA, IF, FREQ, STOKES, COMPLEX
    data = np.zeros((g, 1, 1, 2, 1, 2, 3), dtype=np.float32)
    data[..., 0, 0] = vis_rr.real[:, None, None, :, None]
    data[..., 0, 1] = vis_rr.imag[:, None, None, :, None]
    data[..., 0, 2] = w_rr[:, None, None, :, None]
    data[..., 1, 0] = vis_ll.real[:, None, None, :, None]
    data[..., 1, 1] = vis_ll.imag[:, None, None, :, None]
    data[..., 1, 2] = w_ll[:, None, None, :, None]
    jd1 = np.floor(jd - 0.5) + 0.5
    pars = [u_sec, -u_sec, np.zeros(g), baselines.astype(float), jd1, jd - jd1, np.full(g, 10.0)]
    names = ["UU---SIN", "VV---SIN", "WW---SIN", "BASELINE", "DATE", "DATE", "INTTIM"]
    gd = fits.GroupData(data, parnames=names, pardata=pars, bitpix=-32)
    hdu = fits.GroupsHDU(gd)
    h = hdu.header
    for k, (ctype, crval, cdelt) in enumerate(
        [
            ("COMPLEX", 1.0, 1.0),
            ("STOKES", -1.0, -1.0),
            ("FREQ", FREQ, 1e9),
            ("IF", 1.0, 1.0),
            ("RA", 10.0, 1.0),
            ("DEC", 20.0, 1.0),
        ],
        start=2,
    ):
        h[f"CTYPE{k}"], h[f"CRVAL{k}"], h[f"CDELT{k}"], h[f"CRPIX{k}"] = ctype, crval, cdelt, 1.0
    h["OBJECT"], h["OBSRA"], h["OBSDEC"] = "TEST", 10.0, 20.0
    an = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="ANNAME", format="8A", array=np.array(["AA", "LM", "PV"])),
            fits.Column(name="STABXYZ", format="3D", array=np.zeros((3, 3))),
            fits.Column(name="NOSTA", format="1J", array=np.array([1, 2, 3])),
        ],
        name="AIPS AN",
    )
    fits.HDUList([hdu, an]).writeto(path)


def test_synthetic_uvfits(tmp_path):
    g = 4
    rng = np.random.default_rng(0)
    rr = rng.normal(size=(g, 2)) + 1j * rng.normal(size=(g, 2))
    ll = rng.normal(size=(g, 2)) + 1j * rng.normal(size=(g, 2))
    w_rr = np.full((g, 2), 4.0)
    w_ll = np.full((g, 2), 1.0)
    w_ll[1, :] = 0.0  # LL flagged on record 1: Stokes I from RR alone
    w_rr[3, :] = 0.0
    w_ll[3, :] = -1.0  # record 3 fully flagged
    baselines = np.array([256 * 1 + 2, 256 * 3 + 1, 256 * 2 + 3, 256 * 1 + 3])  # 2nd: PV-AA
    jd = 2457848.5 + np.array([0.1, 0.1, 0.1, 0.2])
    u_sec = np.array([1e-2, 2e-2, 3e-2, 4e-2])
    path = tmp_path / "t.uvfits"
    _write(path, rr, ll, w_rr, w_ll, baselines, jd, u_sec)
    obs = Observation.from_uvfits(path)
    assert obs.stations == ("AA", "LM", "PV") and obs.source == "TEST"
    assert len(obs) == 3  # record 3 flagged
    # record 0: both hands, IF-averaged with equal weights
    s_i = 0.5 * np.sqrt(1 / 4.0 + 1 / 1.0)  # per IF
    exp0 = (0.5 * (rr[0] + ll[0])).mean()
    assert complex(obs.vis[0]) == pytest.approx(exp0, rel=1e-5)
    assert float(obs.sigma[0]) == pytest.approx(s_i / np.sqrt(2), rel=1e-6)
    # record 1 (PV-AA) is stored as AA-PV: conjugated, (u, v) negated; RR alone
    assert (int(obs.t1[1]), int(obs.t2[1])) == (0, 2)
    assert complex(obs.vis[1]) == pytest.approx(np.conj(rr[1].mean()), rel=1e-5)
    assert float(obs.sigma[1]) == pytest.approx(0.5 / np.sqrt(2), rel=1e-6)
    assert float(obs.u[1]) == pytest.approx(-2e-2 * FREQ, rel=1e-6)
    assert float(obs.v[1]) == pytest.approx(2e-2 * FREQ, rel=1e-6)
    # times: hours since 0h UTC of the MJD
    assert float(obs.time[0]) == pytest.approx(0.1 * 24, abs=1e-6)
    assert obs.mjd == 57848
    assert bool(torch.isfinite(obs.sigma).all())
