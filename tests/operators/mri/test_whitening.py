"""Coil-noise whitening: ``CoilNoise.whitened`` turns an MRI problem into a linear-Gaussian
one with the same chi^2 and posterior, so the exact solver steps apply."""

from __future__ import annotations

import math

import torch

from diffinv.operators import GaussianNoise, InverseProblem, RealToComplex
from diffinv.operators.linear_gaussian import real_linear_system
from diffinv.operators.mri import CoilMixing, CoilNoise, MultiCoilMRI, birdcage_maps
from diffinv.operators.testing import check_adjoint
from diffinv.priors import GaussianPrior

C128 = torch.complex128


def _problem(seed=0, size=8, coils=3):
    g = torch.Generator().manual_seed(seed)
    maps = birdcage_maps((size, size), coils, dtype=C128)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, ::2] = True
    mask[:, size // 2 - 1:size // 2 + 1] = True
    q = torch.randn(coils, coils, dtype=C128, generator=g)
    cov = q @ q.conj().T / coils + 0.5 * torch.eye(coils, dtype=C128)
    noise = CoilNoise(cov * 1e-3, mask=mask)
    op = MultiCoilMRI(maps, mask) @ RealToComplex()
    x = torch.randn(1, 2, size, size, dtype=torch.float64, generator=g)
    y = noise.sample(op(x), g)
    return InverseProblem(op, noise, y, image_shape=(2, size, size)), noise, cov * 1e-3


def test_coil_mixing_adjoint():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 4, dtype=C128, generator=g)
    assert check_adjoint(CoilMixing(w), (2, 4, 3, 5), dtype=C128) < 1e-13


def test_whitened_problem_keeps_chi2_and_likelihood_up_to_a_constant():
    problem, noise, cov = _problem()
    white = noise.whitened(problem)
    assert white.is_linear_gaussian and not problem.is_linear_gaussian
    assert isinstance(white.noise, GaussianNoise)
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(5, 2, 8, 8, dtype=torch.float64, generator=g)
    chi_a = noise.chi2(problem.y, problem.operator(xs))
    chi_b = white.noise.chi2(white.y, white.operator(xs))
    assert torch.allclose(chi_a, chi_b, rtol=1e-10)
    assert white.noise.n_data(white.y) == noise.n_data(problem.y)
    diff = noise.log_likelihood(problem.y, problem.operator(xs)) - white.noise.log_likelihood(
        white.y, white.operator(xs))
    m = int(noise.mask.sum())
    logdet = float(torch.linalg.slogdet(cov)[1])
    assert torch.allclose(diff, torch.full_like(diff, -m * logdet), rtol=1e-10)


def test_whitened_posterior_drops_the_unmeasured_entries():
    """The exact posterior of the whitened problem equals the one built by hand from the
    measured k-space entries only, with the coil covariance (importance weights)."""
    problem, noise, cov = _problem(seed=2, size=4, coils=2)
    white = noise.whitened(problem)
    a, y, var = real_linear_system(white, (2, 4, 4))
    assert a.shape[0] == 2 * 2 * int(noise.mask.sum())  # re/im x coils x measured
    assert torch.allclose(var, torch.full_like(var, 0.5))
    prior = GaussianPrior(torch.zeros(2, 4, 4, dtype=torch.float64),
                          torch.eye(32, dtype=torch.float64))
    post = prior.posterior(white)
    # by hand: precision = I + A^H Sigma^-1 A over measured entries (complex Gaussian)
    full = problem.operator.to_matrix((2, 4, 4), dtype=torch.float64)  # complex (C*H*W, 32)
    keep = noise.mask.expand(2, 4, 4).reshape(-1)
    sinv = torch.linalg.inv(cov)
    prec = torch.eye(32, dtype=torch.float64)
    rhs = torch.zeros(32, dtype=torch.float64)
    yk = problem.y.reshape(2, 16)
    ak = full.reshape(2, 16, 32)
    for j in torch.nonzero(noise.mask.reshape(-1)).reshape(-1).tolist():
        aj = ak[:, j, :]  # (coils, 32)
        prec = prec + 2 * (aj.conj().T @ sinv @ aj).real
        rhs = rhs + 2 * (aj.conj().T @ sinv @ yk[:, j]).real
    assert bool(keep.any())
    mean = torch.linalg.solve(prec, rhs)
    assert torch.allclose(post.mean.reshape(-1), mean, atol=1e-9)
    assert torch.allclose(post.cov, torch.linalg.inv(prec), atol=1e-9)
    assert math.isfinite(float(post.cov.trace()))
