"""Sampling patterns: fastMRI-style line masks, Poisson disc, radial and spiral trajectories."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.operators.mri import (
    GOLDEN_ANGLE,
    cartesian_mask,
    poisson_disc_mask,
    radial_trajectory,
    spiral_trajectory,
)


@pytest.mark.parametrize("kind", ["random", "equispaced"])
@pytest.mark.parametrize("accel, cf", [(4, 0.08), (8, 0.04)])
def test_cartesian_mask_rate_and_centre(kind, accel, cf):
    h, w = 64, 320
    m = cartesian_mask((h, w), accel, cf, kind, seed=0)
    assert m.shape == (h, w) and m.dtype == torch.bool
    assert bool((m == m[0:1]).all())  # same lines in every row (phase encodes along W)
    lines = m[0]
    n_low = round(w * cf)
    pad = (w - n_low + 1) // 2
    assert bool(lines[pad : pad + n_low].all())
    rates = [float(cartesian_mask((h, w), accel, cf, kind, seed=s)[0].float().mean())
             for s in range(20)]
    assert abs(sum(rates) / len(rates) - 1 / accel) < 0.15 / accel


def test_equispaced_lines_are_regular_outside_centre():
    w = 256
    lines = cartesian_mask((8, w), 4, 0.08, "equispaced", seed=3)[0]
    n_low = round(w * 0.08)
    pad = (w - n_low + 1) // 2
    outer = torch.cat([torch.nonzero(lines[:pad])[:, 0],
                       torch.nonzero(lines[pad + n_low:])[:, 0] + pad + n_low])
    gaps = torch.diff(outer)
    gaps = gaps[gaps < 10]  # ignore the jump across the centre block
    assert int(gaps.max()) - int(gaps.min()) <= 1


def test_cartesian_mask_reproducible_and_errors():
    assert torch.equal(cartesian_mask((8, 64), 4, seed=5), cartesian_mask((8, 64), 4, seed=5))
    with pytest.raises(ValueError, match="acceleration"):
        cartesian_mask((8, 64), 0.5)
    with pytest.raises(ValueError, match="center_fraction"):
        cartesian_mask((8, 64), 8, 0.5)
    with pytest.raises(ValueError, match="kind"):
        cartesian_mask((8, 64), 4, kind="spiral")


def test_poisson_disc_mask():
    m = poisson_disc_mask((64, 64), 4, calib=(12, 12), seed=0)
    assert m.shape == (64, 64) and m.dtype == torch.bool
    assert bool(m[26:38, 26:38].all())
    assert 1 / 6 < float(m.float().mean()) < 1 / 2.5
    # variable density: the centre is denser than the periphery
    centre = float(m[16:48, 16:48].float().mean())
    assert centre > float(m.float().mean())


def test_radial_trajectory_geometry():
    om = radial_trajectory(13, 32)
    assert om.shape == (13 * 32, 2) and om.dtype == torch.float64
    assert float(om.min()) >= -math.pi and float(om.max()) < math.pi
    spokes = om.reshape(13, 32, 2)
    # each spoke passes through k=0 (sample n/2) and is a straight line through the origin
    assert float(spokes[:, 16].abs().max()) < 1e-12
    ang = torch.atan2(spokes[:, -1, 1], spokes[:, -1, 0])
    diffs = torch.remainder(torch.diff(ang), math.pi)
    torch.testing.assert_close(diffs, torch.full_like(diffs, GOLDEN_ANGLE % math.pi))
    uni = radial_trajectory(4, 8, golden_angle=False).reshape(4, 8, 2)
    a = torch.remainder(torch.atan2(uni[:, -1, 1], uni[:, -1, 0]), math.pi)
    torch.testing.assert_close(torch.sort(a).values, torch.arange(4).double() * math.pi / 4)


def test_spiral_trajectory_geometry():
    om = spiral_trajectory(4, 100, 5.0)
    assert om.shape == (400, 2)
    assert float(om.min()) >= -math.pi and float(om.max()) < math.pi
    r = om.reshape(4, 100, 2).norm(dim=-1)
    assert bool((torch.diff(r, dim=1) > 0).all())  # moves outward
    assert float(r[:, 0].max()) == 0.0 and float(r.max()) < math.pi
    with pytest.raises(ValueError):
        spiral_trajectory(0, 10, 1.0)
