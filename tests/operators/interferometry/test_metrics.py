import math

import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.operators.interferometry.metrics import blur_image, blurred_psnr, ring_metrics


@pytest.mark.parametrize("diameter,pa", [(40.0, 180.0), (46.0, 60.0)])
def test_ring_metrics_recover_crescent_parameters(diameter, pa):
    img = crescent_image(64, 160.0, diameter, 10.0, 0.6, pa, dtype=torch.float64)
    m = ring_metrics(img, 160.0)
    assert m.diameter_uas == pytest.approx(diameter, abs=1.5)
    assert m.width_uas == pytest.approx(10.0, abs=2.5)
    d_pa = (m.position_angle_deg - pa + 180) % 360 - 180
    assert abs(d_pa) < 5
    assert abs(m.center_east_uas) < 1.0 and abs(m.center_north_uas) < 1.0
    assert 0.2 < m.asymmetry < 0.6
    assert m.central_brightness < 0.1


def test_ring_metrics_find_shifted_centre_and_symmetric_ring():
    img = crescent_image(64, 160.0, 42.0, 8.0, 0.0, 0.0, dtype=torch.float64)
    shifted = torch.roll(img, shifts=(2, -3), dims=(-2, -1))  # 2 px south, 3 px east (left)
    m = ring_metrics(shifted, 160.0)
    assert m.center_east_uas == pytest.approx(7.5, abs=1.0)
    assert m.center_north_uas == pytest.approx(-5.0, abs=1.0)
    assert m.asymmetry < 0.05
    with pytest.raises(ValueError, match="image"):
        ring_metrics(torch.zeros(3, 4), 160.0)


def test_blur_preserves_flux_and_psnr():
    img = crescent_image(64, 160.0, 42.0, 8.0, 0.5, 0.0, dtype=torch.float64)
    b = blur_image(img, 160.0, 20.0)
    assert float(b.sum()) == pytest.approx(float(img.sum()), rel=1e-6)
    assert float(b.max()) < float(img.max())
    assert math.isinf(float(blurred_psnr(img, img, 160.0)))
    noisy = img + 1e-4 * torch.randn(
        img.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    p_noisy = float(blurred_psnr(noisy, img, 160.0))
    p_sharp = float(blurred_psnr(noisy, img, 160.0, fwhm_uas=1.0))
    assert p_noisy > p_sharp  # blurring removes pixel noise
    moved = torch.roll(img, shifts=(3, 2), dims=(-2, -1))
    assert float(blurred_psnr(moved, img, 160.0, align=True)) > 100
    assert float(blurred_psnr(moved, img, 160.0)) < 40


@pytest.mark.parametrize("shift,pa", [((3, -4), 180.0), ((-4, 3), 90.0), ((5, 5), 300.0)])
def test_ring_metrics_off_centre_crescents(shift, pa):
    """Strongly asymmetric crescents 10-20 uas off centre: the flux centroid is pulled to the
    bright side, yet the centre search finds the ring (as REx does)."""
    img = crescent_image(64, 160.0, 42.0, 8.0, 0.8, pa, dtype=torch.float64)
    moved = torch.roll(img, shifts=shift, dims=(-2, -1))  # rows south, columns east-left
    m = ring_metrics(moved, 160.0)
    assert m.ok, m.reason
    assert m.diameter_uas == pytest.approx(42.0, abs=2.0)
    assert m.width_uas == pytest.approx(8.0, abs=3.0)
    assert m.center_north_uas == pytest.approx(-2.5 * shift[0], abs=1.5)
    assert m.center_east_uas == pytest.approx(-2.5 * shift[1], abs=1.5)
    assert abs((m.position_angle_deg - pa + 180) % 360 - 180) < 10


def test_ring_metrics_flag_images_without_a_ring():
    n, fov = 64, 160.0
    c = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * fov / n
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    blob = torch.exp(-r2 / (2 * 12.0**2))  # a filled Gaussian: no central depression
    m = ring_metrics(blob, fov)
    assert not m.ok and m.reason
    assert math.isnan(m.diameter_uas) and math.isnan(m.width_uas)
    assert math.isnan(m.position_angle_deg)
    two = torch.zeros(n, n, dtype=torch.float64)
    two[20, 20] = two[44, 40] = 1.0  # two points: peak radius all over the place
    assert not ring_metrics(two, fov).ok
