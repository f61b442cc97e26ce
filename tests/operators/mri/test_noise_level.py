"""Noise level of multi-coil k-space estimated from the data alone."""

from __future__ import annotations

import pytest
import torch

from diffinv.datasets.mri_phantoms import mri_phantom
from diffinv.operators.mri import birdcage_maps, cartesian_mask, fft2c, poisson_disc_mask
from diffinv.operators.mri.noise_level import (
    kspace_noise_sigma,
    outer_kspace_sigma,
    readout_axis,
    readout_background_sigma,
)


def _kspace(n, coils, sigma, mask, seed=0, signal=True):
    g = torch.Generator().manual_seed(seed)
    x = mri_phantom((n, n), seed=1, dtype=torch.complex128)
    k = fft2c(birdcage_maps((n, n), coils, dtype=torch.complex128) * x).reshape(coils, n, n)
    k = k if signal else torch.zeros_like(k)
    noise = torch.complex(torch.randn(k.shape, generator=g, dtype=torch.float64),
                          torch.randn(k.shape, generator=g, dtype=torch.float64))
    return (k + sigma * noise) * mask


@pytest.mark.parametrize("transpose", [False, True])
def test_hybrid_space_finds_the_noise_where_outer_kspace_cannot(transpose):
    n, sigma = 128, 0.002
    mask = cartesian_mask((n, n), 4, 0.08, seed=0).bool()
    mask = mask.T if transpose else mask
    k = _kspace(n, 8, sigma, mask)
    assert readout_axis(mask) == (1 if transpose else 0)
    assert readout_background_sigma(k, mask) == pytest.approx(sigma, rel=0.05)
    # the phantom's sharp edges reach the k-space corners: the outer estimate is far too high
    assert outer_kspace_sigma(k, mask) > 3 * sigma
    est, method = kspace_noise_sigma(k, mask)
    assert est == pytest.approx(sigma, rel=0.05) and "hybrid" in method


def test_pure_noise_is_unbiased():
    n, sigma = 96, 0.01
    mask = cartesian_mask((n, n), 4, 0.08, seed=1).bool()
    k = _kspace(n, 4, sigma, mask, signal=False)
    assert readout_background_sigma(k, mask) == pytest.approx(sigma, rel=0.03)
    assert outer_kspace_sigma(k, mask) == pytest.approx(sigma, rel=0.1)


def test_two_dimensional_masks_fall_back_to_outer_kspace():
    n = 64
    mask = poisson_disc_mask((n, n), 4, calib=(12, 12), seed=0).bool()
    assert readout_axis(mask) is None
    k = _kspace(n, 4, 0.01, mask)
    with pytest.raises(ValueError, match="mask: not a Cartesian line mask"):
        readout_background_sigma(k, mask)
    est, method = kspace_noise_sigma(k, mask)
    assert est == outer_kspace_sigma(k, mask) and "outer" in method
