"""Synthetic CT phantoms: shapes, units, reproducibility, and the Shepp-Logan values."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.datasets.ct_phantoms import MU_WATER, random_ellipse_phantoms, shepp_logan


def test_shepp_logan_values_and_units():
    x = shepp_logan(256)
    assert x.shape == (1, 1, 256, 256) and x.dtype == torch.float32
    # skull 2.0, brain 1.02 (times water); centre pixel lies in the (0, 0.1)/(0, -0.1) gap
    assert float(x.max()) == pytest.approx(2.0 * MU_WATER, rel=1e-6)
    assert float(x[0, 0, 128, 128]) == pytest.approx(1.02 * MU_WATER, rel=1e-5)
    assert float(x[0, 0, 2, 2]) == 0.0 and float(x.min()) >= 0.0
    # skull at the top: row 0 is the top (y up); the outer ellipse reaches y = 0.92
    col = x[0, 0, :, 128]
    top = int(torch.nonzero(col > 0)[0])
    assert top == pytest.approx((1 - 0.92) * 128, abs=1.5)
    # the small tumours are at y = -0.605 (bottom half): row ~ (1 + 0.605) * 128
    assert float(x[0, 0, 205, 128]) > 1.02 * MU_WATER
    y = shepp_logan(64, mu_water=0.05, dtype=torch.float64)
    assert y.dtype == torch.float64 and float(y.max()) == pytest.approx(0.1)


def test_shepp_logan_area_matches_ellipse_area():
    # integral of the phantom over the field of view [-1, 1]^2 (pixel area (2/N)^2)
    x = shepp_logan(200, mu_water=1.0, dtype=torch.float64)
    total = float(x.sum()) * (2 / 200) ** 2
    ellipses = [
        (0.69, 0.92, 2.0),
        (0.6624, 0.874, -0.98),
        (0.11, 0.31, -0.02),
        (0.16, 0.41, -0.02),
        (0.21, 0.25, 0.01),
        (0.046, 0.046, 0.01),
        (0.046, 0.046, 0.01),
        (0.046, 0.023, 0.01),
        (0.023, 0.023, 0.01),
        (0.023, 0.046, 0.01),
    ]
    exact = sum(math.pi * a * b * v for a, b, v in ellipses)
    assert total == pytest.approx(exact, rel=2e-3)


def test_random_phantoms_reproducible_and_physical():
    g1 = torch.Generator().manual_seed(7)
    g2 = torch.Generator().manual_seed(7)
    a = random_ellipse_phantoms(6, 64, generator=g1)
    b = random_ellipse_phantoms(6, 64, generator=g2)
    assert a.shape == (6, 1, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a.min()) >= 0.0
    assert float(a.max()) <= 3.0 * MU_WATER + 1e-7
    # each phantom has a water body and differs from the others
    median_inside = [float(p[p > 0].median()) for p in a]
    assert all(0.3 * MU_WATER < m < 2.0 * MU_WATER for m in median_inside)
    assert len({round(float(p.sum()), 4) for p in a}) == 6
    # nothing outside the inscribed circle
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    outside = ((xx - 31.5) ** 2 + (yy - 31.5) ** 2).sqrt() > 32
    assert float(a[:, 0, outside].abs().max()) == 0.0
    c = random_ellipse_phantoms(
        2, 32, generator=torch.Generator().manual_seed(8), dtype=torch.float64
    )
    assert c.dtype == torch.float64


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="image_size"):
        shepp_logan(bad)
    with pytest.raises(ValueError, match="n"):
        random_ellipse_phantoms(bad, 16)
