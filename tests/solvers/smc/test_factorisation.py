"""Structured factorisations of MCGdiff's whitened operator agree with the dense SVD."""

from __future__ import annotations

import math

import pytest
import torch

import diffinv
from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.elementary import Diagonal
from diffinv.operators.mri import MultiCoilMRI, cartesian_mask
from diffinv.priors.gaussian import GaussianPrior
from diffinv.solvers.smc.factorisation import factorise, real_fourier_basis
from diffinv.solvers.smc.mcgdiff import SVDLikelihood


def diagonal_problem() -> InverseProblem:
    g = torch.Generator().manual_seed(1)
    d = torch.rand(1, 6, 6, dtype=torch.float64, generator=g) + 0.5
    d[0, ::2, 1::3] = 0.0  # unobserved pixels
    op = Diagonal(d)
    y = op(torch.randn(1, 1, 6, 6, dtype=torch.float64, generator=g))
    return InverseProblem(op, GaussianNoise(0.1), y)


def fourier_problem() -> InverseProblem:
    op = MultiCoilMRI(mask=cartesian_mask((8, 8), 2, 0.25, seed=0))
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return InverseProblem(op, GaussianNoise(0.05), op(x))


def log_lik(lik: SVDLikelihood, x: torch.Tensor) -> torch.Tensor:
    xbar = lik.coords(x)[:, : lik.rank]
    z = (lik.ybar - xbar) ** 2 / lik.rho2
    return (-0.5 * z - 0.5 * torch.log(2 * math.pi * lik.rho2)).sum(1) + lik.log_const


@pytest.mark.parametrize("make, kind, shape", [(diagonal_problem, "diagonal", (1, 6, 6)),
                                               (fourier_problem, "circulant", (1, 8, 8))])
def test_structured_factorisation_matches_the_dense_svd(make, kind, shape):
    problem = make()
    fast = SVDLikelihood.from_problem(problem, shape)
    dense = SVDLikelihood.from_problem(problem, shape, factorisation="dense")
    assert fast.factorisation == kind and dense.factorisation == "dense"
    assert fast.rank == dense.rank
    torch.testing.assert_close(torch.sort(fast.rho2).values, torch.sort(dense.rho2).values,
                               rtol=1e-9, atol=0)
    v = fast.basis.matrix()
    torch.testing.assert_close(v.T @ v, torch.eye(v.shape[0], dtype=v.dtype), atol=1e-12,
                               rtol=0)
    # same likelihood (up to x-independent terms, which log_const carries): exact to 1e-9
    x = torch.randn(5, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(log_lik(fast, x), log_lik(dense, x), rtol=1e-9, atol=1e-8)
    want = -0.5 * ((problem.y - problem.operator(x)).abs() ** 2 / problem.noise.sigma**2)
    diff = log_lik(fast, x) - want.reshape(5, -1).sum(1)
    torch.testing.assert_close(diff, diff[:1].expand(5), rtol=1e-9, atol=1e-8)


def ct_problem(n_angles: int) -> InverseProblem:
    op = ParallelBeamRadon(10, n_angles, backend="sparse")
    x = torch.rand(1, 1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    return InverseProblem(op, GaussianNoise(0.05), op(x))


@pytest.mark.parametrize("kind", ["gram", "row-gram", "economy"])
@pytest.mark.parametrize("n_angles", [5, 16])  # 75 rays < 100 unknowns; 240 rays > 100
def test_gram_factorisation_of_ct_matches_the_dense_svd(n_angles, kind):
    problem = ct_problem(n_angles)
    fast = SVDLikelihood.from_problem(problem, (1, 10, 10), factorisation=kind)
    dense = SVDLikelihood.from_problem(problem, (1, 10, 10), factorisation="dense")
    assert fast.factorisation == kind and dense.factorisation == "dense"
    assert fast.rank == dense.rank
    torch.testing.assert_close(fast.rho2, dense.rho2, rtol=1e-9, atol=0)
    v = fast.basis.matrix()
    # the economy kinds keep the r observed directions only (n x r, orthonormal columns)
    assert v.shape == ((100, fast.rank) if kind != "gram" else (100, 100))
    torch.testing.assert_close(v.T @ v, torch.eye(v.shape[1], dtype=v.dtype), atol=1e-12,
                               rtol=0)
    x = torch.rand(5, 1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(log_lik(fast, x), log_lik(dense, x), rtol=1e-9, atol=1e-8)


def test_gram_handles_repeated_singular_values():
    # masked unitary Fourier: every observed singular value is 1/sigma (massively repeated)
    problem = fourier_problem()
    gram = SVDLikelihood.from_problem(problem, (1, 8, 8), factorisation="gram")
    circ = SVDLikelihood.from_problem(problem, (1, 8, 8))
    assert gram.factorisation == "gram" and circ.factorisation == "circulant"
    assert gram.rank == circ.rank
    torch.testing.assert_close(gram.rho2, circ.rho2, rtol=1e-9, atol=0)
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(log_lik(gram, x), log_lik(circ, x), rtol=1e-9, atol=1e-8)


def test_auto_falls_back_to_gram_when_the_svd_fails(monkeypatch):
    # LAPACK's divide-and-conquer SVD can fail to converge (repeated singular values, as on
    # masked Fourier at 64 x 64 after minutes); inject that failure into torch's SVD.  A tall
    # matrix (m > n): "auto" factorises it with the dense SVD (a wide one takes "row-gram")
    g = torch.Generator().manual_seed(0)
    aw = torch.randn(8, 5, dtype=torch.float64, generator=g)
    want = factorise(aw, (1, 1, 5))
    assert want[3] == "dense"

    def fails(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "svd", fails)
    basis, s, r, kind = factorise(aw, (1, 1, 5))
    assert kind == "gram" and r == want[2] == 5
    torch.testing.assert_close(s, want[1], rtol=1e-9, atol=0)
    v = basis.matrix()
    torch.testing.assert_close(v.T @ v, torch.eye(5, dtype=torch.float64), atol=1e-12, rtol=0)
    with pytest.raises(torch.linalg.LinAlgError):
        factorise(aw, (1, 1, 5), kind="dense")  # asked for by name: the error surfaces


@pytest.mark.slow
def test_masked_fourier_64_is_factorised_without_the_svd():
    # the dense SVD fails to converge here (repeated singular values); the structure is used
    mask = cartesian_mask((64, 64), 4, 0.08, seed=0)
    op = MultiCoilMRI(mask=mask)
    x = torch.randn(1, 1, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    lik = SVDLikelihood.from_problem(InverseProblem(op, GaussianNoise(0.05), op(x)), (1, 64, 64))
    assert lik.factorisation == "circulant"
    # a real image: frequency k and its conjugate -k (index N - k on the centred grid) share
    # two real coordinates, of noise variance sigma^2 when both are sampled, 2 sigma^2 when one
    conj = torch.roll(torch.flip(mask, (0, 1)), (1, 1), (0, 1))
    assert lik.rank == int((mask | conj).sum())
    var = 0.05**2
    n_both = int((mask & conj).sum())
    want = torch.full((lik.rank,), 2 * var, dtype=torch.float64)
    want[:n_both] = var
    torch.testing.assert_close(lik.rho2, want, rtol=1e-9, atol=0)


def test_a_structure_that_does_not_hold_is_rejected():
    aw = torch.randn(7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert factorise(aw, (1, 3, 3))[3] == "row-gram"  # (fewer rows than unknowns)
    assert factorise(torch.cat([aw, aw[:2]]), (1, 3, 3))[3] == "dense"
    with pytest.raises(ValueError, match="circulant"):
        factorise(aw, (1, 3, 3), kind="circulant")


def test_real_fourier_basis_is_orthonormal():
    q, _ = real_fourier_basis(4, 6)
    torch.testing.assert_close(q.T @ q, torch.eye(24, dtype=torch.float64), atol=1e-12, rtol=0)


def test_mcgdiff_reports_its_setup():
    problem = fourier_problem()
    prior = GaussianPrior(torch.zeros(1, 8, 8, dtype=torch.float64),
                          torch.eye(64, dtype=torch.float64))
    post = diffinv.sample(problem, prior, "smc", n_samples=16, steps=3, method="mcgdiff",
                          dtype=torch.float64)
    assert post.diagnostics["factorisation"] == "circulant"
    assert 0 < post.diagnostics["setup_seconds"] < post.diagnostics["wall_seconds"]
