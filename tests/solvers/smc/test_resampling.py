"""Resampling schemes and effective sample size (diffinv.solvers.smc.resampling)."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.solvers.smc.resampling import (
    effective_sample_size,
    multinomial_resample,
    normalise_log_weights,
    resample,
    systematic_resample,
)


def _weights(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, dtype=torch.float64, generator=g) ** 3  # uneven, some tiny
    return w / w.sum()


@pytest.mark.parametrize("n", [1, 7, 100])
@pytest.mark.parametrize("seed", range(5))
def test_systematic_counts_within_floor_and_ceil(n, seed):
    w = _weights(n, seed)
    g = torch.Generator().manual_seed(100 + seed)
    idx = systematic_resample(w, g)
    assert idx.shape == (n,) and idx.dtype == torch.int64
    counts = torch.bincount(idx, minlength=n).to(torch.float64)
    assert bool((counts >= torch.floor(n * w) - 1e-9).all())
    assert bool((counts <= torch.ceil(n * w) + 1e-9).all())
    assert int(counts.sum()) == n


def test_systematic_is_unbiased_over_draws():
    n, reps = 10, 4000
    w = _weights(n, 1)
    g = torch.Generator().manual_seed(0)
    total = torch.zeros(n, dtype=torch.float64)
    for _ in range(reps):
        total += torch.bincount(systematic_resample(w, g), minlength=n)
    # counts are in {floor, ceil}: variance <= 1/4 per draw
    assert torch.allclose(total / reps, n * w, atol=5 * math.sqrt(0.25 / reps))


def test_multinomial_is_unbiased_statistically():
    """Mean counts match n W within 5 standard errors of the multinomial count variance."""
    n, reps = 50, 400
    w = _weights(n, 2)
    g = torch.Generator().manual_seed(1)
    total = torch.zeros(n, dtype=torch.float64)
    for _ in range(reps):
        total += torch.bincount(multinomial_resample(w, g), minlength=n)
    mean = total / reps
    se = torch.sqrt(n * w * (1 - w) / reps)
    assert bool(((mean - n * w).abs() <= 5 * se + 1e-12).all())
    # and it is not systematic: some index is drawn outside floor/ceil in some draw
    idx = multinomial_resample(w, torch.Generator().manual_seed(3))
    assert idx.shape == (n,)


def test_resampling_is_deterministic_with_a_seed():
    w = _weights(64, 4)
    for scheme in ("systematic", "multinomial"):
        a = resample(scheme, w, torch.Generator().manual_seed(7))
        b = resample(scheme, w, torch.Generator().manual_seed(7))
        assert torch.equal(a, b)


def test_zero_weight_particles_are_never_drawn():
    w = torch.tensor([0.0, 0.5, 0.0, 0.5], dtype=torch.float64)
    for scheme in ("systematic", "multinomial"):
        idx = resample(scheme, w, torch.Generator().manual_seed(0))
        assert set(idx.tolist()) <= {1, 3}


def test_effective_sample_size():
    assert effective_sample_size(torch.zeros(10, dtype=torch.float64)) == pytest.approx(10.0)
    lw = torch.tensor([0.0, -math.inf, -math.inf], dtype=torch.float64)
    assert effective_sample_size(lw) == pytest.approx(1.0)
    w = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    assert effective_sample_size(torch.log(w) + 123.0) == pytest.approx(1 / float((w**2).sum()))


def test_log_weights_are_normalised_stably_in_float64():
    lw = torch.tensor([-1000.0, -1001.0], dtype=torch.float32)
    w = normalise_log_weights(lw)
    assert w.dtype == torch.float64
    assert float(w[0]) == pytest.approx(1 / (1 + math.exp(-1)))


def test_errors():
    with pytest.raises(ValueError, match="resampling"):
        resample("stratified-ish", torch.ones(3), None)
    with pytest.raises(ValueError, match="weights"):
        systematic_resample(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="weights"):
        multinomial_resample(torch.tensor([float("nan"), 1.0]))
    with pytest.raises(ValueError, match="weights"):
        systematic_resample(torch.zeros(3))
    with pytest.raises(FloatingPointError):
        normalise_log_weights(torch.full((3,), -math.inf))
    with pytest.raises(FloatingPointError):
        normalise_log_weights(torch.tensor([0.0, float("nan")]))
