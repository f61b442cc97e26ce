"""MCGdiff with the economy factorisation (only ``V_r``; the complement moved by a projector).

The economy path must sample the same law as the full basis: on an isotropic Gaussian prior
the observed coordinates evolve independently of the complement, so with the same seed the
weights, the log-evidence and the observed coordinates of the particles are the same as
with a full basis (the complement's noise differs: it has the same law, checked against the
exact target on a correlated prior, where the complement feeds back into the weights).
"""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.base import LinearOperator
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.linear_gaussian import real_linear_system
from diffinv.operators.mri import MultiCoilMRI, cartesian_mask
from diffinv.priors import GaussianPrior
from diffinv.solvers.smc.factorisation import setup_bytes
from diffinv.solvers.smc.sqmc import SOBOL_MAX_DIM, rqmc_normals
from diffinv.solvers.smc.svd_likelihood import SVDLikelihood
from diffinv.testing.smc_cases import F64, gaussian_case, model_reference, run, snis_moments


def wide_problem(n: int = 6, m: int = 3, seed: int = 0) -> InverseProblem:
    g = torch.Generator().manual_seed(seed)
    op = MatrixOperator(torch.randn(m, n, dtype=F64, generator=g), in_shape=(n,))
    x = torch.randn(1, n, dtype=F64, generator=g)
    return InverseProblem(op, GaussianNoise(0.3), op(x))


@pytest.mark.parametrize("potential", ["adaptive", "local"])
def test_economy_run_equals_the_full_basis_run_on_an_isotropic_prior(potential):
    problem = wide_problem()
    prior = GaussianPrior(torch.zeros(6, dtype=F64), torch.eye(6, dtype=F64))
    posts = {kind: run(problem, prior, 200, 20, seed=3, method="mcgdiff", potential=potential,
                       noise="pseudo", resampling="systematic", ess_threshold=1.0,
                       factorisation=kind)
             for kind in ("dense", "row-gram", "economy")}
    full = posts["dense"]
    v_r = SVDLikelihood.from_problem(problem, (6,), factorisation="row-gram").basis.v
    assert v_r.shape == (6, 3)
    for kind in ("row-gram", "economy"):
        post = posts[kind]
        assert post.diagnostics["factorisation"] == kind
        assert post.diagnostics["n_resamples"] == full.diagnostics["n_resamples"] > 0
        assert abs(post.diagnostics["log_evidence"] - full.diagnostics["log_evidence"]) < 1e-8
        torch.testing.assert_close(post.weights, full.weights, rtol=1e-8, atol=1e-12)
        torch.testing.assert_close(post.samples @ v_r, full.samples @ v_r, rtol=0, atol=1e-8)
        # the complement is drawn from another stream (same law, not the same numbers)
        perp = post.samples - (post.samples @ v_r) @ v_r.T
        perp_full = full.samples - (full.samples @ v_r) @ v_r.T
        assert float((perp - perp_full).abs().max()) > 1e-2


@pytest.mark.parametrize("kernel", ["midpoint", "tweedie"])
def test_economy_run_matches_its_exact_target_and_evidence(kernel):
    # 3 data rows, 10 unknowns, a correlated prior: the complement's 7 directions feed back
    # into the observed ones through the denoiser, so a wrong complement law shows here
    prior, problem = gaussian_case(n=10, m=3, sigma_y=1.0, seed=1)
    steps, n = 40, 3000
    post = run(problem, prior, n, steps, method="mcgdiff", ess_threshold=0.0, kernel=kernel,
               potential="local", noise="pseudo")
    assert post.diagnostics["factorisation"] == "row-gram"
    ess = post.diagnostics["ess_final"]
    assert ess > n / 4
    mean, cov, se_mean, se_cov = snis_moments(post)
    ref_mean, ref_cov, ref_logz = model_reference(prior, problem, steps, kernel)
    assert bool(((mean - ref_mean).abs() <= 5 * se_mean).all()), (mean, ref_mean, se_mean)
    assert bool(((cov - ref_cov).abs() <= 5 * se_cov).all()), (cov, ref_cov, se_cov)
    se_logz = math.sqrt(max(1.0 / ess - 1.0 / n, 0.0))
    assert abs(post.diagnostics["log_evidence"] - float(ref_logz)) <= 5 * se_logz + 1e-3


def test_a_setup_that_does_not_fit_is_refused_with_its_memory():
    problem = wide_problem()
    need = setup_bytes(3, 6, "row-gram")
    with pytest.raises(ValueError, match=r"mcgdiff.*needs an estimated .* GiB .*3 data rows "
                                         r"x 6 unknowns.*row-gram"):
        SVDLikelihood.from_problem(problem, (6,), factorisation="row-gram",
                                   memory_limit=need - 1)
    with pytest.raises(ValueError, match=r"needs an estimated .* GiB .*'auto'"):
        SVDLikelihood.from_problem(problem, (6,), memory_limit=64)
    lik = SVDLikelihood.from_problem(problem, (6,), memory_limit=need)
    assert lik.factorisation == "row-gram" and lik.rank == 3
    # the economy estimate has no n x n term; the dense one does
    assert setup_bytes(3000, 16384, "row-gram") < setup_bytes(3000, 16384, "dense") / 2


def test_more_unknowns_than_the_former_limit_with_few_rows():
    # 72 x 72 = 5,184 unknowns (the dense-SVD limit was 4,096), 20 rows: V_r is 5,184 x 20
    problem = wide_problem(n=72 * 72, m=20, seed=2)
    lik = SVDLikelihood.from_problem(problem, (72 * 72,))
    assert lik.factorisation == "row-gram" and lik.basis.v.shape == (5184, 20)
    v = lik.basis.v
    torch.testing.assert_close(v.T @ v, torch.eye(20, dtype=F64), atol=1e-12, rtol=0)


def test_the_matrix_built_by_blocks_is_the_operators_matrix():
    mask = cartesian_mask((8, 8), 2, 0.25, seed=0)
    x = torch.randn(1, 1, 8, 8, dtype=F64, generator=torch.Generator().manual_seed(5))
    op = MultiCoilMRI(mask=mask)  # complex data, rows the noise model drops
    assert type(op).to_matrix is LinearOperator.to_matrix  # (the generic one: blocks used)
    by_blocks = op.to_matrix((1, 8, 8), block=7)
    at_once = op.to_matrix((1, 8, 8), block=64)  # the whole identity in one call
    torch.testing.assert_close(by_blocks, at_once, rtol=0, atol=0)
    problem = InverseProblem(op, GaussianNoise(0.1), op(x))
    a, _, _ = real_linear_system(problem, (1, 8, 8))  # the set-up's matrix: the same rows
    keep = problem.noise.weights(problem.y).reshape(-1) > 0
    torch.testing.assert_close(a, torch.cat([at_once[keep].real, at_once[keep].imag]),
                               rtol=0, atol=0)


def test_rqmc_normals_beyond_sobol_dimensions():
    states = torch.randn(16, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    dim = SOBOL_MAX_DIM + 99
    z = rqmc_normals(states, dim, 1, torch.Generator().manual_seed(1))
    assert z.shape == (16, dim) and bool(torch.isfinite(z).all())
    # each Sobol column is stratified (one point per 1/16 of the normal's quantiles)...
    u = torch.special.ndtr(z[:, :10])
    assert bool(((torch.sort(u, dim=0).values * 16).floor()
                 == torch.arange(16, dtype=F64)[:, None]).all())
    # ... the columns beyond are independent standard normals
    rest = z[:, SOBOL_MAX_DIM:].reshape(-1)
    assert abs(float(rest.mean())) < 5 / math.sqrt(rest.numel())
    assert abs(float(rest.var()) - 1.0) < 5 * math.sqrt(2 / rest.numel())


def test_the_factorisation_option_is_checked_and_reported():
    problem = wide_problem()
    prior = GaussianPrior(torch.zeros(6, dtype=F64), torch.eye(6, dtype=F64))
    with pytest.raises(ValueError, match="factorisation"):
        run(problem, prior, 8, 3, method="mcgdiff", factorisation="qr")
    post = run(problem, prior, 8, 3, method="mcgdiff")
    assert post.diagnostics["factorisation"] == "row-gram" and post.diagnostics["rank"] == 3
    assert 0 < post.diagnostics["setup_seconds"] < post.diagnostics["wall_seconds"]
