"""The log-normal Gaussian-process map ``z -> exp(mu + R z)``."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.operators import InverseProblem
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.lognormal import LogNormalField
from diffinv.operators.noise import GaussianNoise

F64 = torch.float64


def _field(h=6, w=5, s=0.8, ell=1.5):
    mean = 0.1 + torch.rand(1, h, w, dtype=F64, generator=torch.Generator().manual_seed(0))
    return LogNormalField(mean, s, ell), mean


def test_root_is_the_squared_exponential_covariance():
    field, _ = _field()
    cov = field.root @ field.root.T
    assert torch.allclose(cov, field.cov, atol=1e-12)
    # pixels (0, 0) and (1, 1) are sqrt(2) pixels apart
    expect = 0.8**2 * math.exp(-2.0 / (2 * 1.5**2))
    assert abs(float(field.cov[0, 5 + 1]) - expect) < 1e-12
    assert abs(float(field.cov[0, 0]) - 0.8**2 * (1 + 1e-6)) < 1e-12


def test_draws_have_the_prior_mean_and_log_covariance():
    field, mean = _field()
    n = 200_000
    z = torch.randn(n, field.latent_dim, dtype=F64, generator=torch.Generator().manual_seed(1))
    x = field(z)
    assert x.shape == (n, 1, 6, 5) and bool((x > 0).all())
    flat = x.reshape(n, -1)
    se = flat.std(0) / math.sqrt(n)
    assert bool(((flat.mean(0) - mean.reshape(-1)).abs() <= 5 * se).all())
    log_cov = torch.cov(torch.log(flat).T)
    assert float((log_cov - field.cov).abs().max()) < 0.02


def test_gradient_through_a_forward_model():
    field, _ = _field(3, 3)
    op = MatrixOperator(torch.randn(4, 9, dtype=F64, generator=torch.Generator().manual_seed(2)),
                        in_shape=(1, 3, 3))
    problem = InverseProblem(op @ field, GaussianNoise(0.1), torch.zeros(1, 4, dtype=F64))
    z = torch.randn(2, 9, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: problem.log_likelihood(t), (z,))


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(1, 3, 3), 1.0, 1.0), "mean: expected finite, positive"),
    ((torch.ones(3), 1.0, 1.0), "mean: expected an image"),
    ((torch.ones(2, 3, 3), 1.0, 1.0), "one channel"),
    ((torch.ones(1, 3, 3), 0.0, 1.0), "log_std"),
    ((torch.ones(1, 3, 3), 1.0, -2.0), "correlation_pixels"),
    ((torch.ones(1, 65, 65), 1.0, 1.0), "at most 4096"),
])
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        LogNormalField(*args)


def test_wrong_latent_shape_is_refused():
    field, _ = _field()
    with pytest.raises(ValueError, match="x"):
        field(torch.zeros(2, 7, dtype=F64))
