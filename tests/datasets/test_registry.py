"""Training-data registry: shapes, units/ranges, determinism, complex channel convention."""

import math

import pytest
import torch

from diffinv.datasets.registry import (
    estimate_range,
    get_dataset,
    list_datasets,
    random_complex_phantoms,
    random_disks,
)


def test_registered_names():
    assert {"disks", "blackhole", "ct-phantom", "mri-phantom", "natural-patches", "ct-anatomy",
            "ct-anatomy-crops", "mri-anatomy", "mri-anatomy-crops"} <= set(
        list_datasets())
    with pytest.raises(ValueError, match="unknown name"):
        get_dataset("nope")


def test_disks_range_and_determinism():
    spec = get_dataset("disks")
    x = spec.sample(16, 24, torch.Generator().manual_seed(3))
    assert x.shape == (16, 1, 24, 24) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert (x.flatten(1).amax(1) >= 0.3).all()  # every image holds at least one disc
    assert torch.equal(x, spec.sample(16, 24, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="image_size"):
        random_disks(1, 2)


def test_complex_phantoms_as_two_channels():
    g = torch.Generator().manual_seed(0)
    z = random_complex_phantoms(6, 32, g)
    assert z.shape == (6, 1, 32, 32) and z.is_complex()
    assert float(z.abs().max()) <= 1.0 + 1e-6
    # the phase is smooth inside the object: neighbouring phase differences are small
    inside = z.abs() > 0.02
    dphi = torch.angle(z[..., 1:] * z[..., :-1].conj())
    both = inside[..., 1:] & inside[..., :-1]
    assert float(dphi[both].abs().max()) < 0.5
    spec = get_dataset("mri-phantom")
    x = spec.sample(6, 32, torch.Generator().manual_seed(0))
    assert x.shape == (6, 2, 32, 32)
    torch.testing.assert_close(torch.complex(x[:, 0], x[:, 1]), z[:, 0])
    assert spec.data_range == (-1.0, 1.0)


def test_estimate_range():
    x = torch.linspace(0, 2, 10001)
    lo, hi = estimate_range(x)
    assert lo == 0.0 and hi == pytest.approx(2 * 0.999, rel=1e-3)
    lo, hi = estimate_range(torch.linspace(-3, 1, 10001), symmetric=True)
    assert lo == -hi and hi == pytest.approx(3 * 0.999, rel=1e-3)
    assert not math.isnan(lo)
