"""Several independent SMC runs batched together (``smc(..., n_runs=R)``).

Each run must be a complete SMC run of its own: its weighted estimates match the exact
target within its own SNIS standard errors, resampling never mixes runs, and the spread of
the run means agrees with the spread of separately seeded runs.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.solvers.smc.particles import ParticleWeights, RunWeights
from diffinv.testing.smc_cases import F64, gaussian_case, model_reference, run, snis_moments


def _run_moments(post, runs):
    """SNIS moments of each run (weights renormalised within the run)."""
    n = post.n_samples // runs
    out = []
    for k in range(runs):
        sl = slice(k * n, (k + 1) * n)
        sub = type(post)(post.samples[sl], post.weights[sl])
        out.append(snis_moments(sub))
    return out


@pytest.mark.parametrize("method, kernel", [("mcgdiff", "midpoint"), ("mcgdiff", "tweedie"),
                                            ("tds", "midpoint")])
def test_each_batched_run_matches_the_target(method, kernel):
    """No resampling: every run's weighted mean within 5 of its own SNIS se of the target."""
    prior, problem = gaussian_case(sigma_y=1.0 if method == "tds" else 0.5)
    steps, n, runs = 30, 1500, 3
    post = run(problem, prior, runs * n, steps, method=method, ess_threshold=0.0, n_runs=runs,
               kernel=kernel)
    d = post.diagnostics
    assert d["n_runs"] == runs and len(d["log_evidence"]) == runs
    assert len(d["ess_per_step"]) == runs and len(d["ess_per_step"][0]) == steps
    assert d["n_resamples"] == [0] * runs
    blocks = post.weights.reshape(runs, n).sum(1)
    assert torch.allclose(blocks, torch.full((runs,), 1.0 / runs, dtype=F64), atol=1e-12)
    ref_mean, ref_cov, ref_logz = model_reference(prior, problem, steps, kernel)
    for k, (mean, _, se_mean, _) in enumerate(_run_moments(post, runs)):
        if method == "mcgdiff":
            assert bool(((mean - ref_mean).abs() <= 5 * se_mean).all()), (k, mean, ref_mean)
        else:  # TDS's finite-N accuracy is looser (see test_smc): 0.15 posterior std
            std = ref_cov.diag().sqrt()
            assert bool(((mean - ref_mean).abs() <= 0.15 * std).all()), (k, mean, ref_mean)
    if method == "mcgdiff":
        for k in range(runs):
            se = math.sqrt(1.0 / d["ess_final"][k] - 1.0 / n)
            assert abs(d["log_evidence"][k] - float(ref_logz)) <= 5 * se + 1e-3
    # the runs differ (independent random numbers)
    a, b = post.samples[:n], post.samples[n:2 * n]
    assert not torch.allclose(a, b)


def test_batched_runs_spread_like_separate_runs():
    """Resampling every step: the between-run spread of R batched runs is that of R separately
    seeded runs (F-test at 0.1% two-sided), and both centre on the exact target."""
    prior, problem = gaussian_case(seed=2)
    steps, n, runs = 20, 200, 12
    post = run(problem, prior, runs * n, steps, seed=7, method="mcgdiff", ess_threshold=1.0,
               n_runs=runs)
    assert post.diagnostics["n_resamples"] == [steps - 1] * runs
    batched = torch.stack([m[0] for m in _run_moments(post, runs)])
    separate = torch.stack([
        snis_moments(run(problem, prior, n, steps, seed=100 + s, method="mcgdiff",
                         ess_threshold=1.0))[0]
        for s in range(runs)
    ])
    ref_mean, _, _ = model_reference(prior, problem, steps)
    t_999 = 4.44  # two-sided 0.999 Student t, 11 degrees of freedom
    for means in (batched, separate):
        spread = means.std(0) / math.sqrt(runs)
        assert bool(((means.mean(0) - ref_mean).abs() <= t_999 * spread).all())
    ratio = batched.var(0) / separate.var(0)
    f_999 = 7.63  # 0.9995 quantile of F(11, 11)
    assert bool(((ratio < f_999) & (ratio > 1 / f_999)).all()), ratio


def test_run_weights_never_mix_runs():
    g = torch.Generator().manual_seed(0)
    rw = RunWeights(3, 4, torch.device("cpu"), "multinomial", 0.5, g)
    inc = torch.tensor([0.0, -50.0, -50.0, -50.0,  # run 0: one particle carries the weight
                        0.0, 0.0, 0.0, 0.0,  # run 1: even, not resampled
                        -50.0, -50.0, 0.0, -50.0], dtype=F64)  # run 2: particle 10
    rw.reweight(inc, 0)
    idx = rw.maybe_resample(0)
    assert idx.tolist() == [0, 0, 0, 0, 4, 5, 6, 7, 10, 10, 10, 10]
    assert rw.diagnostics()["n_resamples"] == [1, 0, 1]
    assert torch.allclose(rw.weights, torch.full((12,), 1 / 12, dtype=F64))
    # per-run evidence equals that of a separate ParticleWeights with the same increments
    single = ParticleWeights(4, torch.device("cpu"), "multinomial", 0.5, g)
    single.reweight(inc[:4], 0)
    assert rw.diagnostics()["log_evidence"][0] == pytest.approx(single.log_evidence)
    assert rw.ess_history[0] == pytest.approx([1.0, 4.0, 1.0])
    assert RunWeights(2, 3, torch.device("cpu"), "systematic", 0.5, g).maybe_resample(0) is None


@pytest.mark.parametrize("n_runs, match", [(0, "n_runs"), (True, "n_runs"), (3, "multiple")])
def test_bad_n_runs_raise(n_runs, match):
    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match=match):
        run(problem, prior, 8, 3, n_runs=n_runs)
