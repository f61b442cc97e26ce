"""Anatomical CT and MRI phantoms: shapes, units/ranges, determinism, size independence."""

from __future__ import annotations

import pytest
import torch

from diffinv.datasets.anatomy_shapes import (
    Draw,
    random_crops,
    random_field_coefficients,
    render_field,
)
from diffinv.datasets.ct_anatomy import MU_WATER, ct_anatomy_crops, ct_anatomy_phantoms
from diffinv.datasets.mri_anatomy import mri_anatomy_crops, mri_anatomy_phantoms
from diffinv.datasets.registry import get_dataset


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ct_anatomy_shapes_units_and_tissues():
    x = ct_anatomy_phantoms(6, 96, _g(0))
    assert x.shape == (6, 1, 96, 96) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 2.4 * MU_WATER + 1e-7
    rel = x / MU_WATER
    for img in rel[:, 0]:
        body = img > 0.5
        assert 0.15 < float(body.double().mean()) < 0.8  # a body/head fills part of the view
        assert float(img.max()) > 1.6  # cortical bone (ribs, spine or skull)
        # soft tissue around water dominates the body, with texture (not piecewise constant)
        soft = img[(img > 0.85) & (img < 1.15)]
        assert soft.numel() > 0.3 * float(body.sum())
        assert len(torch.unique(soft)) > 200
    assert float(x[..., 0, 0].abs().max()) == 0.0  # corners are air (inscribed circle)


def test_ct_anatomy_has_lungs_in_some_slices():
    rel = ct_anatomy_phantoms(12, 64, _g(1)) / MU_WATER
    # lung parenchyma (0.1-0.4 x water) covers a sizeable area in thorax slices only
    lung = ((rel > 0.08) & (rel < 0.4)).double().mean((1, 2, 3))
    assert float(lung.max()) > 0.05 and float(lung.min()) < 0.01


def test_mri_anatomy_complex_magnitude_and_smooth_phase():
    z = mri_anatomy_phantoms(5, 96, _g(0))
    assert z.shape == (5, 1, 96, 96) and z.dtype == torch.complex64
    mag = z.abs()
    assert float(mag.max()) <= 1.0 + 1e-6
    assert (mag.flatten(1).amax(1) >= 0.79).all()
    assert float(mag[..., 0, 0].max()) == 0.0  # background
    inside = mag > 0.05
    dphi = torch.angle(z[..., 1:] * z[..., :-1].conj())
    both = inside[..., 1:] & inside[..., :-1]
    assert float(dphi[both].abs().max()) < 0.5
    # phase is not constant: some images carry a spatially varying phase
    spread = torch.stack([torch.angle(zi[m] * zi[m].mean().conj()).std()
                          for zi, m in zip(z[:, 0], inside[:, 0])])
    assert float(spread.max()) > 0.05
    # many distinct grey levels in the head (texture, folded boundaries)
    assert len(torch.unique(mag[0][inside[0]])) > 500


@pytest.mark.parametrize("fn", [ct_anatomy_phantoms, mri_anatomy_phantoms])
def test_phantoms_deterministic_by_seed_and_seeds_differ(fn):
    a, b, c = fn(3, 40, _g(5)), fn(3, 40, _g(5)), fn(3, 40, _g(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])


@pytest.mark.parametrize("fn", [ct_anatomy_phantoms, mri_anatomy_phantoms])
def test_same_seed_same_phantom_at_any_size(fn):
    """The random numbers do not depend on the size: a 128 rendering average-pooled to 64
    matches the 64 rendering up to edge partial-volume differences."""
    big = fn(2, 128, _g(3))
    small = fn(2, 64, _g(3))
    pooled = torch.nn.functional.avg_pool2d(big.abs() if big.is_complex() else big, 2)
    ref = small.abs() if small.is_complex() else small
    err = (pooled - ref).abs()
    assert float(err.mean()) < 0.03 * float(ref.abs().max())
    assert float((err > 0.2 * ref.abs().max()).double().mean()) < 0.03


def test_random_field_unit_variance_and_band_limit():
    coef = random_field_coefficients(Draw(_g(0)), 64, 16, 4.0, 2.0, 8.0)
    f = render_field(coef, 64)
    assert f.shape == (64, 64, 64)
    assert float(f.var()) == pytest.approx(1.0, rel=0.15)
    assert float(f.mean((1, 2)).abs().mean()) < 0.3
    # smooth: neighbouring pixels are strongly correlated
    corr = float((f[..., 1:] * f[..., :-1]).mean() / f.var())
    assert corr > 0.8


@pytest.mark.parametrize("fn,ch", [(ct_anatomy_crops, 1), (mri_anatomy_crops, 1)])
def test_crops_from_random_sizes(fn, ch):
    x = fn(10, 24, _g(0), sizes=(32, 48))
    assert x.shape == (10, ch, 24, 24)
    assert torch.equal(x, fn(10, 24, _g(0), sizes=(32, 48)))
    assert not torch.equal(x, fn(10, 24, _g(1), sizes=(32, 48)))


def test_random_crops_checks_sizes():
    with pytest.raises(ValueError, match="sizes"):
        random_crops(ct_anatomy_phantoms, 2, 64, _g(0), (32, 48))
    with pytest.raises(ValueError, match="image_size"):
        ct_anatomy_phantoms(1, 4)
    with pytest.raises(ValueError, match="n"):
        mri_anatomy_phantoms(0, 32)


@pytest.mark.parametrize("name,channels", [("ct-anatomy", 1), ("ct-anatomy-crops", 1),
                                           ("mri-anatomy", 2), ("mri-anatomy-crops", 2)])
def test_registered(name, channels):
    spec = get_dataset(name)
    size = 32
    x = spec.sample(2, size, _g(0))
    assert x.shape == (2, channels, size, size) and x.dtype == torch.float32
    lo, hi = spec.data_range
    assert float(x.min()) >= lo - 1e-6 and float(x.max()) <= hi + 1e-6
    assert spec.symmetric == (channels == 2)
    if channels == 2:  # complex magnitude stays in [0, 1]
        assert float(x.pow(2).sum(1).sqrt().max()) <= 1.0 + 1e-6
