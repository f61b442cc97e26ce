"""Implicit MCGdiff bases: the same coordinates as their dense matrices, and structured
operators factorised at real sizes without a dense matrix."""

from __future__ import annotations

import math
import time

import pytest
import torch

import diffinv
from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.elementary import Diagonal
from diffinv.solvers.smc.bases import DenseBasis, FourierBasis, PermutationBasis
from diffinv.solvers.smc.factorisation import fourier_columns, setup_bytes
from diffinv.solvers.smc.svd_likelihood import SVDLikelihood
from diffinv.testing.white_fourier import WhiteGaussian, masked_fourier_problem, white_posterior

F64 = torch.float64


@pytest.mark.parametrize("h, w", [(4, 6), (5, 7), (8, 8), (1, 9)])
def test_fourier_basis_matches_its_matrix(h, w):
    freq, is_sine = fourier_columns(h, w)
    order = torch.randperm(h * w, generator=torch.Generator().manual_seed(h * w))
    basis = FourierBasis(h, w, freq[order], is_sine[order])
    v = basis.matrix()
    torch.testing.assert_close(v.T @ v, torch.eye(h * w, dtype=F64), atol=1e-12, rtol=0)
    x = torch.randn(3, h * w, dtype=F64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(basis.coords(x), x @ v, atol=1e-12, rtol=0)
    torch.testing.assert_close(basis.coords(x, 5), (x @ v)[:, :5], atol=1e-12, rtol=0)
    torch.testing.assert_close(basis.expand(x), x @ v.T, atol=1e-12, rtol=0)
    torch.testing.assert_close(basis.observed(5), v[:, :5], atol=0, rtol=0)
    # a single frequency is a cosine or a sine: check one column against its formula
    j = int(torch.nonzero(basis.is_sine)[0]) if bool(basis.is_sine.any()) else 0
    k1, k2 = int(basis.freq[j]) // w, int(basis.freq[j]) % w
    i1, i2 = torch.meshgrid(torch.arange(h, dtype=F64), torch.arange(w, dtype=F64),
                            indexing="ij")
    phase = 2 * math.pi * (i1 * k1 / h + i2 * k2 / w)
    col = (torch.sin(phase) if bool(basis.is_sine[j]) else torch.cos(phase)).reshape(-1)
    torch.testing.assert_close(v[:, j], col / col.norm(), atol=1e-12, rtol=0)


def test_permutation_basis_matches_its_matrix():
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    basis = PermutationBasis(perm)
    v = basis.matrix()
    torch.testing.assert_close(v.T @ v, torch.eye(12, dtype=F64), atol=0, rtol=0)
    x = torch.randn(4, 12, dtype=F64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(basis.coords(x), x @ v, atol=0, rtol=0)
    torch.testing.assert_close(basis.coords(x, 5), (x @ v)[:, :5], atol=0, rtol=0)
    torch.testing.assert_close(basis.expand(x), x @ v.T, atol=0, rtol=0)


def test_dense_economy_basis_projects_out_its_span():
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(10, 3, dtype=F64, generator=g))
    basis = DenseBasis(q)
    assert not basis.complete
    x = torch.randn(2, 10, dtype=F64, generator=g)
    torch.testing.assert_close(basis.coords(x, 2), (x @ q)[:, :2], atol=1e-14, rtol=0)
    w = torch.randn(2, 10, dtype=F64, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(basis.coords(basis.project_out(w)), torch.zeros(2, 3, dtype=F64),
                               atol=1e-14, rtol=0)


def test_structure_is_found_from_the_operator_without_its_matrix():
    # 128 x 128: the dense route needs a (2 x 16384) x 16384 matrix and a 16384^2 basis
    # (about 8 GiB); refused under a 256 MiB limit, the structured one is a few MiB
    problem = masked_fourier_problem(128)
    limit = 256 * 2**20
    assert setup_bytes(2 * 128 * 128, 128 * 128, "dense") > 10 * limit
    start = time.perf_counter()
    lik = SVDLikelihood.from_problem(problem, (1, 128, 128), memory_limit=limit)
    assert lik.factorisation == "circulant" and isinstance(lik.basis, FourierBasis)
    assert time.perf_counter() - start < 20.0  # generous: a dense SVD would take hours
    with pytest.raises(ValueError, match="GiB"):
        SVDLikelihood.from_problem(problem, (1, 128, 128), factorisation="dense",
                                   memory_limit=limit)
    # the likelihood in its coordinates is the problem's, up to an x-independent constant
    x = torch.rand(3, 1, 128, 128, dtype=F64, generator=torch.Generator().manual_seed(9))
    xbar = lik.coords(x)[:, : lik.rank]
    mine = (-0.5 * (lik.ybar - xbar) ** 2 / lik.rho2
            - 0.5 * torch.log(2 * math.pi * lik.rho2)).sum(1) + lik.log_const
    want = (-0.5 * (problem.y - problem.operator(x)).abs() ** 2 / 0.05**2).reshape(3, -1).sum(1)
    m = 2 * problem.y.numel()  # every k-space entry is a datum (zero off the mask)
    want = want - m * math.log(0.05) - 0.5 * m * math.log(2 * math.pi)
    torch.testing.assert_close(mine, want, rtol=1e-10, atol=1e-6)


def test_inpainting_at_256_is_diagonal_and_exact():
    g = torch.Generator().manual_seed(5)
    keep = (torch.rand(1, 256, 256, generator=g) < 0.3).to(F64)
    op = Diagonal(keep)
    y = op(torch.rand(1, 1, 256, 256, dtype=F64, generator=g))
    problem = InverseProblem(op, GaussianNoise(0.1), y)
    lik = SVDLikelihood.from_problem(problem, (1, 256, 256), memory_limit=256 * 2**20)
    assert lik.factorisation == "diagonal" and isinstance(lik.basis, PermutationBasis)
    assert lik.rank == int(keep.sum())
    torch.testing.assert_close(lik.rho2, torch.full_like(lik.rho2, 0.01), rtol=1e-12, atol=0)
    observed = lik.basis.perm[: lik.rank]
    torch.testing.assert_close(lik.ybar, y.reshape(-1)[observed], rtol=1e-12, atol=1e-14)


def test_mcgdiff_with_the_implicit_basis_matches_the_exact_white_gaussian_posterior():
    # masked Fourier at 32 x 32 with a white Gaussian prior: per real Fourier coordinate the
    # exact posterior is N((tau^2 ybar + rho^2 mu_bar)/(tau^2+rho^2), tau^2 rho^2/(tau^2+rho^2))
    n, tau, mu = 32, 0.3, 0.5
    problem = masked_fourier_problem(n, seed=1)
    lik = SVDLikelihood.from_problem(problem, (1, n, n))
    assert isinstance(lik.basis, FourierBasis)
    mean_bar, var_bar = white_posterior(lik, n, tau, mu)
    r = lik.rank
    z2, ratio = [], []
    for seed in range(2):
        post = diffinv.sample(problem, WhiteGaussian(n, n, tau, mu), "smc", n_samples=64,
                              steps=100, method="mcgdiff", dtype=F64, seed=seed,
                              progress=False)
        assert post.diagnostics["factorisation"] == "circulant"
        w = post.weights.to(F64)
        xbar = lik.coords(post.samples)
        m = (w[:, None] * xbar).sum(0)
        v = (w[:, None] * (xbar - m) ** 2).sum(0)
        z2.append(float(((m - mean_bar) ** 2 / var_bar)[:r].mean()))
        ratio.append(float((v / var_bar)[:r].mean()))
    # a weighted mean of ~45 effective particles: E z^2 ~ 1/45; measured 0.025-0.047
    assert max(z2) < 0.08, z2
    assert all(0.85 < q < 1.1 for q in ratio), ratio
