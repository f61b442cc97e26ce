import math

import pytest
import torch

from diffinv.datasets.blackhole import crescent_image, random_blackhole_images, sky_grid


def _centroid(img, fov):
    east, north = sky_grid(img.shape[-1], fov)
    w = img[0, 0].double()
    return float((w * east).sum() / w.sum()), float((w * north).sum() / w.sum())


def test_crescent_flux_radius_and_orientation():
    n, fov = 128, 160.0
    img = crescent_image(n, fov, 40.0, 6.0, 0.5, 90.0, total_flux_jy=0.6, dtype=torch.float64)
    assert img.shape == (1, 1, n, n) and img.dtype == torch.float64
    assert float(img.sum()) == pytest.approx(0.6, rel=1e-12)
    assert float(img.min()) >= 0
    # radial profile peaks at the radius (20 uas)
    east, north = sky_grid(n, fov)
    r = torch.sqrt(east**2 + north**2)
    bins = torch.arange(0, 60, 1.25)
    prof = torch.stack([img[0, 0][(r >= a) & (r < a + 1.25)].mean() for a in bins])
    assert float(bins[int(prof.argmax())]) + 0.625 == pytest.approx(20.0, abs=1.5)
    # position angle 90 deg (east): the bright side is on the left, centroid to the east
    cx, cy = _centroid(img, fov)
    assert cx > 3.0 and abs(cy) < 0.1
    south = crescent_image(n, fov, 40.0, 6.0, 0.5, 180.0, dtype=torch.float64)
    cx, cy = _centroid(south, fov)
    assert cy < -3.0 and abs(cx) < 0.1
    # the bright/faint contrast is (1 + A) / (1 - A) = 3 along the ring
    i_b = img[0, 0][(r > 19) & (r < 21) & (east > 18)].mean()
    i_f = img[0, 0][(r > 19) & (r < 21) & (east < -18)].mean()
    assert float(i_b / i_f) == pytest.approx(3.0, rel=0.05)


def test_symmetric_ring_is_point_symmetric():
    img = crescent_image(64, 160.0, 45.0, 10.0, 0.0, 0.0, dtype=torch.float64)
    torch.testing.assert_close(img, torch.flip(img, dims=(-1, -2)))


def test_crescent_errors():
    with pytest.raises(ValueError, match="asymmetry"):
        crescent_image(32, 160.0, 40.0, 5.0, 1.5, 0.0)
    with pytest.raises(ValueError, match="fov_uas"):
        crescent_image(32, 0.0, 40.0, 5.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="image_size"):
        crescent_image(0, 160.0, 40.0, 5.0, 0.5, 0.0)


def test_random_images():
    g = torch.Generator().manual_seed(0)
    x = random_blackhole_images(6, 64, 160.0, generator=g)
    assert x.shape == (6, 1, 64, 64) and x.dtype == torch.float32
    assert float(x.min()) >= 0
    flux = x.sum(dim=(1, 2, 3))
    assert bool(((flux > 0.49) & (flux < 0.71)).all())
    again = random_blackhole_images(6, 64, 160.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, again)
    assert float((x[0] - x[1]).abs().max()) > 1e-4  # varied
    # ring-like: little flux at the centre compared with the ring radius
    east, north = sky_grid(64, 160.0)
    r = torch.sqrt(east**2 + north**2)
    centre = x[:, 0][:, r < 5].mean(1)
    ring = x[:, 0][:, (r > 17) & (r < 25)].mean(1)
    assert bool((centre < ring).all())
    assert math.isclose(float(random_blackhole_images(0).numel()), 0.0)
