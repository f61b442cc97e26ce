import numpy as np
import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.datasets.fits_image import read_fits_image, write_fits_image

RA, DEC = 187.7059307575226, 12.39112323919932


def test_roundtrip_and_wcs_orientation(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    img = crescent_image(32, 160.0, 40.0, 8.0, 0.8, 90.0, dtype=torch.float64)  # bright east
    before = img.clone()
    p = write_fits_image(
        tmp_path / "m87.fits", img, 160.0, RA, DEC, frequency_hz=230e9, mjd=57848.0, source="M87"
    )
    assert torch.equal(img, before)
    back = read_fits_image(p)
    torch.testing.assert_close(back.image, img[0, 0], rtol=0, atol=0)
    assert back.fov_uas == pytest.approx(160.0)
    assert back.ra_deg == pytest.approx(RA, abs=1e-11)  # 0.04 uas
    assert back.dec_deg == pytest.approx(DEC, abs=1e-11)
    assert back.source == "M87"
    assert back.frequency_hz == 230e9 and back.mjd == 57848.0
    # an independent reader (astropy WCS on the raw FITS array) puts the bright side east
    with fits.open(p) as h:
        data, w = h[0].data, WCS(h[0].header)
    assert h[0].header["BUNIT"] == "JY/PIXEL"
    yy, xx = np.unravel_index(np.argmax(data), data.shape)
    ra, dec = w.wcs_pix2world([[xx, yy]], 0)[0]
    assert ra > RA  # east = larger RA
    assert abs(dec - DEC) * 3.6e9 < 10.0
    # a point north of centre in our array (row < N/2) has larger Dec in the file's WCS
    north = torch.zeros(32, 32, dtype=torch.float64)
    north[4, 16] = 1.0
    p2 = write_fits_image(tmp_path / "n.fits", north, 160.0, RA, DEC)
    with fits.open(p2) as h:
        yy, xx = np.unravel_index(np.argmax(h[0].data), h[0].data.shape)
        _, dec = WCS(h[0].header).wcs_pix2world([[xx, yy]], 0)[0]
    assert (dec - DEC) * 3.6e9 == pytest.approx((16 - 4 - 0.5) * 5.0, abs=0.01)


def test_stack_and_errors(tmp_path):
    stack = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    p = write_fits_image(tmp_path / "s.fits", stack, 100.0)
    torch.testing.assert_close(read_fits_image(p).image, stack[:, 0])
    with pytest.raises(ValueError, match="image"):
        write_fits_image(tmp_path / "x.fits", torch.rand(4, 5), 100.0)
    with pytest.raises(ValueError, match="NaN"):
        write_fits_image(tmp_path / "x.fits", torch.full((4, 4), float("nan")), 100.0)
    with pytest.raises(FileNotFoundError):
        write_fits_image(tmp_path / "missing" / "x.fits", torch.rand(4, 4), 100.0)
    with pytest.raises(FileNotFoundError):
        read_fits_image(tmp_path / "none.fits")
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_posterior_fits(tmp_path):
    from diffinv.datasets.fits_image import write_posterior_fits
    from diffinv.posterior import Posterior

    samples = torch.rand(5, 1, 16, 16, dtype=torch.float64)
    post = Posterior(samples)
    paths = write_posterior_fits(post, tmp_path, 120.0, ra_deg=RA, dec_deg=DEC, source="M87")
    assert [p.name for p in paths] == ["mean.fits", "std.fits", "samples.fits"]
    torch.testing.assert_close(read_fits_image(paths[0]).image, samples.mean(0)[0])
    torch.testing.assert_close(read_fits_image(paths[1]).image, samples.std(0)[0])
    torch.testing.assert_close(read_fits_image(paths[2]).image, samples[:, 0])
