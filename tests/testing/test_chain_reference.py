"""The closed-form output distribution of the backward chain, against simulation."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.priors import GaussianPrior
from diffinv.schedules import karras_sigmas
from diffinv.solvers.kernels import reverse_kernel
from diffinv.testing.chain_reference import model_prior

F64 = torch.float64


@pytest.mark.parametrize("kernel", ["ddpm", "midpoint"])
def test_model_prior_matches_a_simulated_chain(kernel):
    prior = GaussianPrior(torch.tensor([1.0, -2.0], dtype=F64),
                          torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=F64))
    sigmas = karras_sigmas(12, 0.01, 20.0)
    n = 20000
    g = torch.Generator().manual_seed(0)
    x = float(sigmas[0]) * torch.randn(n, 2, dtype=F64, generator=g)
    for i in range(len(sigmas) - 1):
        s, sn = float(sigmas[i]), float(sigmas[i + 1])
        mean, var = reverse_kernel(x, prior(x, torch.full((n,), s, dtype=F64)), s, sn, kernel)
        x = mean + math.sqrt(var) * torch.randn(n, 2, dtype=F64, generator=g)
    ref = model_prior(prior, sigmas, kernel)
    emp_mean, emp_cov = x.mean(0), torch.cov(x.T)
    sd = ref.cov.diag().sqrt()
    assert bool(((emp_mean - ref.mean).abs() <= 5 * sd / math.sqrt(n)).all())
    # var of a sample covariance entry ~ (C_ii C_jj + C_ij^2) / n
    se_cov = torch.sqrt((sd[:, None] ** 2 * sd[None] ** 2 + ref.cov**2) / n)
    assert bool(((emp_cov - ref.cov).abs() <= 5 * se_cov).all())


def test_midpoint_kernel_is_closer_to_the_prior_than_ddpm():
    prior = GaussianPrior(torch.zeros(3, dtype=F64), torch.diag(torch.tensor([0.01, 1.0, 100.0],
                                                                             dtype=F64)))
    sigmas = karras_sigmas(100, 0.002, 80.0)
    ratio_ddpm = model_prior(prior, sigmas, "ddpm").cov.diag() / prior.cov.diag()
    ratio_mid = model_prior(prior, sigmas, "midpoint").cov.diag() / prior.cov.diag()
    assert bool((ratio_ddpm < 0.93).all())  # the known variance deficit of the ancestral kernel
    assert bool(((ratio_mid - 1).abs() < 0.005).all())
