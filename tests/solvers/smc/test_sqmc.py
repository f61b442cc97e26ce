"""Hilbert ordering, ordered resampling and RQMC move noise (diffinv.solvers.smc.sqmc).

The low-variance properties that the ``ordered`` scheme and ``noise="rqmc"`` rely on, each
against what plain systematic resampling and independent normals give on the same input.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.solvers.smc.resampling import ordered_resample, resample, systematic_resample
from diffinv.solvers.smc.sqmc import hilbert_key, hilbert_order, move_normals, rqmc_normals

F64 = torch.float64


@pytest.mark.parametrize("k, bits", [(1, 4), (2, 3), (3, 2), (4, 2), (8, 1)])
def test_hilbert_key_is_a_path_through_every_cell(k, bits):
    cells = torch.cartesian_prod(*[torch.arange(2**bits)] * k).reshape(-1, k).to(torch.int64)
    key = hilbert_key(cells, bits)
    assert sorted(key.tolist()) == list(range(2 ** (k * bits)))  # a bijection
    path = cells[torch.argsort(key)]
    steps = (path[1:] - path[:-1]).abs().sum(1)
    assert bool((steps == 1).all())  # consecutive keys are neighbouring cells


def _clusters(seed: int, n: int = 400):
    """``n`` points in 4 tight clusters at the corners of a square, in random order, with
    uneven weights; returns points, weights and cluster labels."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 4, (n,), generator=g)
    corners = torch.tensor([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0], [10.0, 10.0]], dtype=F64)
    pts = corners[label] + 0.1 * torch.randn(n, 2, dtype=F64, generator=g)
    w = torch.rand(n, dtype=F64, generator=g) ** 2
    return pts, w / w.sum(), label


def test_ordered_resampling_counts_per_cluster_within_one():
    """Counts per cluster within 1 of n times its weight (each cluster is one run of the
    Hilbert order), and per particle within floor/ceil as for systematic resampling; plain
    systematic resampling of the same unsorted particles misses the per-cluster bound."""
    worst_plain = 0.0
    for seed in range(20):
        pts, w, label = _clusters(seed)
        n = w.numel()
        target = torch.zeros(4, dtype=F64).index_add_(0, label, w) * n
        g = torch.Generator().manual_seed(1000 + seed)
        idx = ordered_resample(w, pts, g)
        counts = torch.bincount(idx, minlength=n).to(F64)
        assert bool((counts >= torch.floor(n * w) - 1e-9).all())
        assert bool((counts <= torch.ceil(n * w) + 1e-9).all())
        per_cluster = torch.bincount(label[idx], minlength=4).to(F64)
        assert float((per_cluster - target).abs().max()) < 1.0 + 1e-9, (seed, per_cluster)
        plain = torch.bincount(label[systematic_resample(w, g)], minlength=4).to(F64)
        worst_plain = max(worst_plain, float((plain - target).abs().max()))
    assert worst_plain > 1.5  # the ordering is what gives the bound


def test_ordered_resampling_is_unbiased_over_draws():
    pts, w, _ = _clusters(3, n=12)
    g = torch.Generator().manual_seed(0)
    reps = 500
    total = torch.zeros(12, dtype=F64)
    for _ in range(reps):
        total += torch.bincount(resample("ordered", w, g, points=pts), minlength=12)
    assert torch.allclose(total / reps, 12 * w, atol=5 * math.sqrt(0.25 / reps))


def test_hilbert_order_keeps_identical_points_together_and_uses_leading_axes():
    g = torch.Generator().manual_seed(0)
    parents = torch.randn(50, 300, dtype=F64, generator=g)  # more axes than HILBERT_DIMS
    pts = parents.repeat_interleave(3, dim=0)[torch.randperm(150, generator=g)]
    order = hilbert_order(pts)
    assert sorted(order.tolist()) == list(range(150))
    s = pts[order]
    same = (s[1:] == s[:-1]).all(1)
    assert int(same.sum()) == 100  # each group of 3 copies is contiguous


def test_rqmc_normals_are_standard_and_stratified():
    """Each column is N(0, 1) (mean and variance over many sets); and among the copies of
    one parent the counts of positive normals per column are within 4 of half, where
    independent normals spread with standard deviation sqrt(n) / 2 = 15.8."""
    n, dim, sets = 1000, 5, 20
    states = torch.zeros(n, 3, dtype=F64)  # all copies of one parent
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([rqmc_normals(states, dim, 1, g) for _ in range(sets)])
    assert draws.shape == (sets, n, dim) and draws.dtype == F64
    flat = draws.reshape(-1, dim)
    assert bool((flat.mean(0).abs() < 5 / math.sqrt(flat.shape[0])).all())
    assert bool(((flat.var(0) - 1).abs() < 5 * math.sqrt(2 / flat.shape[0])).all())
    pos = (draws > 0).sum(1).to(F64)  # (sets, dim)
    assert float((pos - n / 2).abs().max()) <= 4
    iid = (torch.randn(sets, n, dim, dtype=F64, generator=g) > 0).sum(1).to(F64)
    assert float((iid - n / 2).abs().max()) > 8


def test_rqmc_runs_are_independent_and_seeded():
    states = torch.randn(200, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    a = rqmc_normals(states, 6, 2, torch.Generator().manual_seed(5))
    b = rqmc_normals(states, 6, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert not torch.allclose(a[:100], a[100:])  # two runs, two scramblings
    z, e = move_normals("rqmc", states, (4, 2), 2, torch.Generator().manual_seed(5))
    assert torch.equal(torch.cat([z, e], 1), a)


def test_errors():
    with pytest.raises(ValueError, match="bits"):
        hilbert_key(torch.zeros(3, 8, dtype=torch.int64), 8)
    with pytest.raises(ValueError, match="coords"):
        hilbert_key(torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match="points"):
        resample("ordered", torch.ones(3, dtype=F64), None)
    with pytest.raises(ValueError, match="points"):
        ordered_resample(torch.ones(3, dtype=F64), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="noise"):
        move_normals("sobol", torch.zeros(3, 2), (2,), 1, None)
    with pytest.raises(ValueError, match="n_runs"):
        rqmc_normals(torch.zeros(5, 2), 2, 2, None)


# -- the options in the smc solver ------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["midpoint", "tweedie"])
def test_sqmc_run_matches_the_exact_target(kernel):
    """``resampling="ordered", noise="rqmc"`` without resampling: the weighted moments are
    within 5 SNIS standard errors (an upper bound: RQMC points are negatively dependent) and
    log Z within its own error, as for independent noise."""
    from diffinv.testing.smc_cases import gaussian_case, model_reference, run, snis_moments

    prior, problem = gaussian_case(n=3, m=2, sigma_y=0.5)
    steps, n = 40, 2000
    post = run(problem, prior, n, steps, method="mcgdiff", ess_threshold=0.0, kernel=kernel,
               resampling="ordered", noise="rqmc")
    d = post.diagnostics
    assert d["noise"] == "rqmc" and d["resampling"] == "ordered"
    mean, cov, se_mean, se_cov = snis_moments(post)
    ref_mean, ref_cov, ref_logz = model_reference(prior, problem, steps, kernel)
    assert bool(((mean - ref_mean).abs() <= 5 * se_mean).all()), (mean, ref_mean, se_mean)
    assert bool(((cov - ref_cov).abs() <= 5 * se_cov).all()), (cov, ref_cov, se_cov)
    se_logz = math.sqrt(1.0 / d["ess_final"] - 1.0 / n)
    assert abs(d["log_evidence"] - float(ref_logz)) <= 5 * se_logz + 1e-3


def test_sqmc_with_resampling_every_step_is_consistent_across_runs():
    """Resampling at every step (the SQMC of Gerber & Chopin): the means and log-evidences
    of 6 batched runs agree with the exact target within the runs' own spread."""
    from diffinv.testing.smc_cases import gaussian_case, model_reference, run, snis_moments

    prior, problem = gaussian_case(seed=2)
    steps, n, runs = 30, 400, 6
    post = run(problem, prior, runs * n, steps, method="mcgdiff", ess_threshold=1.0,
               n_runs=runs, resampling="ordered", noise="rqmc")
    d = post.diagnostics
    assert d["n_resamples"] == [steps - 1] * runs
    means = torch.stack([snis_moments(type(post)(post.samples[k * n:(k + 1) * n],
                                                  post.weights[k * n:(k + 1) * n]))[0]
                         for k in range(runs)])
    ref_mean, _, ref_logz = model_reference(prior, problem, steps)
    t_999 = 5.9  # two-sided 0.999 quantile of Student t with 5 degrees of freedom
    spread = means.std(0) / math.sqrt(runs)
    assert bool(((means.mean(0) - ref_mean).abs() <= t_999 * spread).all())
    logz = torch.tensor(d["log_evidence"], dtype=F64)
    assert abs(float(logz.mean()) - float(ref_logz)) <= t_999 * float(logz.std()) / math.sqrt(
        runs) + 1e-3


def test_rqmc_noise_is_refused_where_it_is_not_implemented():
    from diffinv.testing.smc_cases import gaussian_case, run

    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match="noise"):
        run(problem, prior, 10, 5, method="tds", noise="rqmc")
    with pytest.raises(ValueError, match="noise"):
        run(problem, prior, 10, 5, noise="sobol")


@pytest.mark.parametrize("n", [40, 600])  # eigh, then block power iteration above 256
def test_leading_axes_find_a_dominant_subspace(n):
    from diffinv.solvers.smc.sqmc import leading_axes

    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(n, 3, dtype=F64, generator=g))
    coef = torch.randn(500, 3, dtype=F64, generator=g) * torch.tensor([10.0, 6.0, 3.0], dtype=F64)
    x = coef @ basis.T + 0.05 * torch.randn(500, n, dtype=F64, generator=g)
    q = leading_axes(x - x.mean(0), 3)
    assert q.shape == (n, 3)
    assert torch.allclose(q.T @ q, torch.eye(3, dtype=F64), atol=1e-10)
    assert float(torch.linalg.svdvals(q.T @ basis).min()) > 0.99


def test_defaults_are_sqmc_for_mcgdiff_only():
    from diffinv.testing.smc_cases import gaussian_case, run

    prior, problem = gaussian_case()
    d = run(problem, prior, 20, 5, method="mcgdiff").diagnostics
    assert (d["resampling"], d["noise"]) == ("ordered", "rqmc")
    d = run(problem, prior, 20, 5, method="tds").diagnostics
    assert d["resampling"] == "systematic" and "noise" not in d
