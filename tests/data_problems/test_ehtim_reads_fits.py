"""Optional: eht-imaging reads diffinv's FITS images as written (orientation, scale, WCS)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.datasets.fits_image import write_fits_image


def test_ehtim_reads_our_fits(tmp_path):
    eh = pytest.importorskip("ehtim")
    img = crescent_image(32, 160.0, 42.0, 10.0, 0.6, 135.0, dtype=torch.float64)
    path = write_fits_image(tmp_path / "m.fits", img, 160.0, ra_deg=187.7059, dec_deg=12.3911,
                            frequency_hz=228.1e9, mjd=57849.0, source="M87",
                            extra={"MJD": 57849.0})
    im = eh.image.load_fits(str(path))
    # eht-imaging's imvec is row-major with row 0 north and column 0 east, as ours
    np.testing.assert_allclose(im.imvec.reshape(im.ydim, im.xdim), img.reshape(32, 32).numpy(),
                               rtol=1e-12)
    assert im.psize / eh.RADPERUAS == pytest.approx(5.0)
    assert im.ra * 15 == pytest.approx(187.7059) and im.dec == pytest.approx(12.3911)
    assert im.rf == pytest.approx(228.1e9) and im.mjd == 57849 and im.source == "M87"
