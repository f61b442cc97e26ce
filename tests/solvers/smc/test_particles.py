"""Particle-weight bookkeeping (diffinv.solvers.smc.particles)."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.solvers.smc.particles import ParticleWeights, denoise


def _weights(n=4, threshold=0.5):
    return ParticleWeights(n, torch.device("cpu"), "systematic", threshold,
                           torch.Generator().manual_seed(0))


def test_log_evidence_is_the_product_of_mean_increments():
    pw = _weights(threshold=0.0)
    inc1 = torch.log(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    pw.reweight(inc1, 0)
    assert pw.log_evidence == pytest.approx(math.log(2.5))
    inc2 = torch.log(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64))
    pw.reweight(inc2, 1)
    # second factor: sum_i W_i G_i with W = (1,2,3,4)/10
    assert pw.log_evidence == pytest.approx(math.log(2.5) + math.log((4 + 6 + 6 + 4) / 10))
    assert pw.ess_history[0] == pytest.approx(100 / 30)


def test_resampling_resets_weights_and_keeps_the_evidence():
    pw = _weights(threshold=1.0)
    pw.reweight(torch.tensor([0.0, -1.0, -2.0, -3.0], dtype=torch.float64), 0)
    before = pw.log_evidence
    idx = pw.maybe_resample(0)
    assert idx is not None and idx.shape == (4,)
    assert torch.equal(pw.log_w, torch.zeros(4, dtype=torch.float64))
    assert pw.log_evidence == before and pw.diagnostics()["n_resamples"] == 1
    pw.reweight(torch.full((4,), 0.5, dtype=torch.float64), 1)
    assert pw.log_evidence == pytest.approx(before + 0.5)


def test_unique_ancestors_are_counted_at_each_resampling():
    pw = _weights(n=4, threshold=1.0)
    pw.reweight(torch.tensor([0.0, -torch.inf, -torch.inf, -torch.inf], dtype=torch.float64), 0)
    idx = pw.maybe_resample(0)
    assert torch.equal(idx, torch.zeros(4, dtype=torch.int64))
    pw.reweight(torch.zeros(4, dtype=torch.float64), 1)
    pw.maybe_resample(1)  # equal weights, systematic: every particle once
    assert pw.diagnostics()["unique_ancestors"] == [1, 4]
    assert [lw.tolist() for lw in pw.run_log_weights] == [[0.0] * 4]


def test_no_resampling_above_the_threshold():
    pw = _weights(threshold=0.5)
    pw.reweight(torch.zeros(4, dtype=torch.float64), 0)
    assert pw.maybe_resample(0) is None


def test_bad_increments_raise_with_the_step():
    pw = _weights()
    with pytest.raises(FloatingPointError, match="step 3"):
        pw.reweight(torch.tensor([0.0, float("nan"), 0.0, 0.0]), 3)
    with pytest.raises(FloatingPointError, match="step 4"):
        pw.reweight(torch.full((4,), -math.inf), 4)


def test_denoise_chunks_and_gradients():
    def prior(x, sigma):
        return x / (1 + sigma[:, None] ** 2)

    x = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x0, val, grad = denoise(prior, x, 2.0, 3, lambda t: -(t**2).sum(1))
    assert torch.allclose(x0, x / 5)
    assert torch.allclose(val, -((x / 5) ** 2).sum(1))
    assert torch.allclose(grad, -2 * x / 25)
    assert not x0.requires_grad and not grad.requires_grad
