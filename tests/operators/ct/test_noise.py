"""Transmission Poisson noise and the Gaussian log-data approximation."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.operators import InverseProblem
from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.ct.noise import (
    TransmissionPoisson,
    counts_to_line_integrals,
    gaussian_log_data,
)


def test_log_likelihood_matches_scipy_poisson():
    stats = pytest.importorskip("scipy.stats")
    noise = TransmissionPoisson(I0=500.0, dark=3.0)
    ell = torch.tensor([[[[0.1, 1.0, 2.5, 5.0]]]], dtype=torch.float64).repeat(2, 1, 1, 1)
    counts = torch.tensor(
        [[[[450.0, 190.0, 40.0, 7.0]]], [[[0.0, 200.0, 45.0, 2.0]]]], dtype=torch.float64
    )
    lam = 500.0 * torch.exp(-ell) + 3.0
    ref = stats.poisson.logpmf(counts.numpy(), lam.numpy()).reshape(2, -1).sum(1)
    ll = noise.log_likelihood(counts, ell)
    assert ll.shape == (2,)
    assert torch.allclose(ll, torch.from_numpy(ref), rtol=1e-10)


def test_sample_statistics_and_reproducibility():
    noise = TransmissionPoisson(I0=1000.0, dark=5.0)
    ell = torch.full((4000, 1, 1, 3), 1.0, dtype=torch.float64)
    ell[..., 1] = 3.0
    ell[..., 2] = 0.0
    g = torch.Generator().manual_seed(1)
    counts = noise.sample(ell, generator=g)
    lam = 1000.0 * torch.exp(-ell[0, 0, 0]) + 5.0
    mean = counts.mean(dim=(0, 1, 2))
    var = counts.var(dim=(0, 1, 2))
    assert torch.allclose(mean, lam, rtol=0.02)
    assert torch.allclose(var, lam, rtol=0.1)
    assert torch.equal(counts, counts.round())
    again = noise.sample(ell, generator=torch.Generator().manual_seed(1))
    assert torch.equal(counts, again)


def test_chi2_near_one_at_the_truth():
    noise = TransmissionPoisson(I0=2000.0)
    ell = torch.rand(1, 1, 60, 80, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    counts = noise.sample(ell, generator=torch.Generator().manual_seed(2))
    assert float(noise.chi2(counts, ell)) / noise.n_data(counts) == pytest.approx(1.0, abs=0.05)


def test_problem_gradient_points_to_the_truth():
    op = ParallelBeamRadon(16, 12)
    x_true = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    x_true[..., 4:12, 5:11] = 0.05
    noise = TransmissionPoisson(I0=1e5)
    y = noise.sample(op(x_true), generator=torch.Generator().manual_seed(0))
    problem = InverseProblem(op, noise, y)
    x0 = torch.zeros_like(x_true)
    ll0, grad = problem.grad_log_likelihood(x0)
    # a small step along the gradient increases the likelihood, and the gradient is positive
    # where the object attenuates (counts lower than the blank scan)
    ll1 = problem.log_likelihood(x0 + 1e-7 * grad / grad.abs().max())
    assert float(ll1) > float(ll0)
    assert float(grad[..., 4:12, 5:11].mean()) > 0
    assert float(problem.log_likelihood(x_true)) > float(ll0)


def test_gaussian_log_data_sigma_matches_delta_method():
    noise = TransmissionPoisson(I0=5000.0, dark=20.0)
    ell = torch.full((20000, 1, 1, 1), 2.0, dtype=torch.float64)
    counts = noise.sample(ell, generator=torch.Generator().manual_seed(3))
    est, _ = gaussian_log_data(counts, 5000.0, 20.0)
    lam = 5000.0 * math.exp(-2.0) + 20.0
    predicted = math.sqrt(lam) / (lam - 20.0)
    assert float(est.std()) == pytest.approx(predicted, rel=0.03)
    assert float(est.mean()) == pytest.approx(2.0, abs=0.01)
    single, gauss = gaussian_log_data(counts[:1], 5000.0, 20.0)
    sigma = math.sqrt(float(counts[0].item())) / (float(counts[0].item()) - 20.0)
    assert float(gauss.sigma.reshape(-1)[0]) == pytest.approx(sigma, rel=1e-12)
    assert torch.allclose(single, counts_to_line_integrals(counts[:1], 5000.0, 20.0))


def test_negative_line_integrals_stay_finite_and_smooth():
    noise = TransmissionPoisson(I0=1e4)
    ell = torch.tensor([-300.0, -1.0, -1e-9, 0.0, 1e-9, 2.0], dtype=torch.float64)
    ell = ell.reshape(1, 1, 1, -1).requires_grad_(True)
    lam = noise.mean_counts(ell).detach()
    assert torch.allclose(lam[0, 0, 0, 2:], 1e4 * torch.exp(-ell[0, 0, 0, 2:]), rtol=1e-12)
    assert float(lam[0, 0, 0, 0]) == pytest.approx(1e4 * 301)  # tangent continuation
    counts = torch.full_like(ell, 5000.0)
    (grad,) = torch.autograd.grad(noise.log_likelihood(counts, ell).sum(), ell)
    assert torch.isfinite(grad).all()
    # d/d ell of (y log lam - lam) at 0 is lam - y = 5000 from both sides
    assert torch.allclose(
        grad[0, 0, 0, 2:5], torch.full((3,), 5000.0, dtype=torch.float64), rtol=1e-6
    )


def test_counts_floor_and_validation():
    ell = counts_to_line_integrals(torch.tensor([[[[0.0, 100.0]]]]), 100.0)
    assert torch.isfinite(ell).all() and float(ell[0, 0, 0, 1]) == 0.0
    with pytest.raises(ValueError, match="I0"):
        TransmissionPoisson(I0=0.0)
    with pytest.raises(ValueError, match="dark"):
        TransmissionPoisson(I0=10.0, dark=-1.0)
    with pytest.raises(ValueError, match="counts"):
        counts_to_line_integrals(torch.tensor([float("nan")]), 10.0)
