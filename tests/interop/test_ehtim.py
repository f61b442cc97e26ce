"""Optional: eht-imaging's closure chi^2 of our FITS image equals ours on the same data.

Needs ``ehtim`` (``pip install ehtim``) and the shared EHT M87 files; skips otherwise.
"""

from __future__ import annotations

import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.datasets.fits_image import write_fits_image
from diffinv.operators.interferometry.combine import closure_chi2 as our_closure_chi2
from diffinv.operators.interferometry.combine import read_observation
from diffinv.operators.interferometry.products import data_product_problem


@pytest.mark.slow
def test_same_closure_chi2_as_ehtim(shared_data, tmp_path):
    eh = pytest.importorskip("ehtim")
    from diffinv.interop.ehtim import closure_chi2, match_rows, with_visibilities

    path = shared_data("eht2017_m87") / "SR1_M87_2017_096_hi_hops_netcal_StokesI.uvfits"
    ours = read_observation(path, systematic=0.05, scan_average=True)
    fov = 120.0
    img = crescent_image(32, fov, 30.0, 10.0, 0.6, 150.0, dtype=torch.float64)
    fits = write_fits_image(tmp_path / "m.fits", img, fov, ra_deg=ours.ra_deg,
                            dec_deg=ours.dec_deg, frequency_hz=ours.frequency_hz,
                            mjd=float(ours.mjd), source=ours.source)
    problem = data_product_problem(ours, 32, fov, {"cphase": 1.0, "logcamp": 1.0},
                                   dtype=torch.float64)
    mine = our_closure_chi2(problem, img.reshape(1, 1, 32, 32))

    obs = eh.obsdata.load_uvfits(str(path))
    obs.add_scans()
    obs = obs.avg_coherent(0.0, scan_avg=True).add_fractional_noise(0.05)
    im = eh.image.load_fits(str(fits))
    im.pulse = eh.observing.pulses.rectPulse2D  # our pixels are boxes
    rows, rev = match_rows(obs, ours)
    theirs = closure_chi2(with_visibilities(obs, ours, rows, rev), ours, im, rows, rev)
    # a crescent far from the data: chi^2 >> 1, so agreement is not an accident of fit
    assert float(mine["cphase"]) > 2 and float(mine["logcamp"]) > 2
    for kind in ("cphase", "logcamp"):
        assert theirs[kind] == pytest.approx(float(mine[kind]), rel=0.02), kind
    # and the check can fail: a shifted crescent changes eht-imaging's figure
    im_shift = eh.image.load_fits(str(fits))
    im_shift.pulse = eh.observing.pulses.rectPulse2D
    im_shift.imvec = img.flip(-1).reshape(-1).numpy().copy()
    shifted = closure_chi2(with_visibilities(obs, ours, rows, rev), ours, im_shift, rows, rev)
    assert abs(shifted["cphase"] / float(mine["cphase"]) - 1) > 0.05
