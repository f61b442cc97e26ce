"""Sliced Wasserstein distance (diffinv.testing.metrics) against independent references."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.testing.metrics import sliced_wasserstein, wasserstein_1d

scipy_stats = pytest.importorskip("scipy.stats")


def test_weighted_w1_matches_scipy():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(50, dtype=torch.float64, generator=g)
    v = 2 * torch.randn(70, dtype=torch.float64, generator=g) + 1
    wu = torch.rand(50, dtype=torch.float64, generator=g)
    wv = torch.rand(70, dtype=torch.float64, generator=g)
    ours = float(wasserstein_1d(u, v, wu, wv, p=1))
    ref = scipy_stats.wasserstein_distance(u.numpy(), v.numpy(), wu.numpy(), wv.numpy())
    assert ours == pytest.approx(ref, rel=1e-10)


def test_w2_equal_sizes_is_sorted_matching():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(40, dtype=torch.float64, generator=g)
    v = torch.randn(40, dtype=torch.float64, generator=g) * 3
    ref = math.sqrt(float(((u.sort().values - v.sort().values) ** 2).mean()))
    assert float(wasserstein_1d(u, v)) == pytest.approx(ref, rel=1e-12)


def test_duplicated_particles_equal_weights():
    """A weighted set equals the unweighted set with repeated points."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, dtype=torch.float64, generator=g)
    y = torch.randn(30, 3, dtype=torch.float64, generator=g)
    counts = torch.tensor([1, 3, 2, 1, 3])
    rep = torch.repeat_interleave(x, counts, dim=0)
    a = sliced_wasserstein(x, y, x_weights=counts.double(),
                           generator=torch.Generator().manual_seed(0))
    b = sliced_wasserstein(rep, y, generator=torch.Generator().manual_seed(0))
    assert a == pytest.approx(b, rel=1e-10)


def test_translation_gives_the_projected_shift():
    """SW_2 between x and x + c is sqrt(mean_theta (theta . c)^2), exactly per direction."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 3, dtype=torch.float64, generator=g)
    c = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    dirs = torch.randn(64, 3, dtype=torch.float64, generator=g)
    unit = dirs / dirs.norm(dim=1, keepdim=True)
    expected = math.sqrt(float(((unit @ c) ** 2).mean()))
    assert sliced_wasserstein(x, x + c, directions=dirs) == pytest.approx(expected, rel=1e-10)
    assert sliced_wasserstein(x, x, directions=dirs) == 0.0


def test_errors():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="x, y"):
        sliced_wasserstein(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="weights"):
        sliced_wasserstein(x, x, x_weights=torch.tensor([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(ValueError, match="p"):
        wasserstein_1d(x[:, 0], x[:, 0], p=0.5)
