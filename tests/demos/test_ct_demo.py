"""CT demos: they build, the data are consistent with the truth, and a short DPS run works."""

from __future__ import annotations

import pytest
import torch

import diffinv
from diffinv.demos import available_demos, get_demo
from diffinv.demos.ct import phantom_gaussian_prior
from diffinv.operators.ct.noise import counts_to_line_integrals


def test_sparse_view_demo_builds_and_reconstructs():
    assert {"ct-sparse-view", "ct-tooth"} <= set(available_demos())
    prior = phantom_gaussian_prior(16, n_train=200)
    demo = get_demo("ct-sparse-view")(seed=0, size=16, n_angles=8, prior=prior)
    problem = demo.problem
    x = demo.x_true
    assert x.shape == (1, 1, 16, 16) and float(x.min()) >= 0
    # counts are consistent with the truth (reduced chi-square near 1)
    assert 0.7 < float(problem.reduced_chi2(x)) < 1.3
    # FBP of the log data is a sensible baseline
    fbp = problem.operator.fbp(counts_to_line_integrals(problem.y, demo.metadata["I0"]))
    assert float((fbp - x).norm() / x.norm()) < 0.6
    # the prior is swappable: any denoiser with the same event shape is used as given
    assert demo.prior is prior
    solver, opts = demo.solver_defaults["solver"], demo.solver_defaults["options"]
    post = diffinv.sample(problem, demo.prior, solver=solver, n_samples=2, steps=30, seed=0, **opts)
    mean = post.mean.reshape(1, 1, 16, 16)
    assert torch.isfinite(mean).all()
    prior_mean = demo.prior.mean.reshape(1, 1, 16, 16).to(mean.dtype)
    # the data pull the estimate towards the truth, away from the prior mean
    assert float((mean - x).norm()) < float((prior_mean - x).norm())


def test_tooth_demo_builds(shared_data, monkeypatch):
    root = shared_data("ct_tomopy_tooth").parent
    monkeypatch.setenv("DIFFINV_SHARED_DATA", str(root))
    demo = get_demo("ct-tooth")(bin_factor=32, view_step=6)
    ref = demo.x_true
    n = ref.shape[-1]
    assert demo.problem.y.shape == (1, 1, 31, n)
    fbp = demo.problem.operator.fbp(demo.problem.y)
    assert float((fbp - ref).norm() / ref.norm()) < 0.2


def test_sparse_view_post_log_is_linear_gaussian_on_the_same_counts():
    prior = phantom_gaussian_prior(16, n_train=200)
    counts = get_demo("ct-sparse-view")(seed=3, size=16, n_angles=8, prior=prior)
    post_log = get_demo("ct-sparse-view")(seed=3, size=16, n_angles=8, prior=prior,
                                          noise="post-log")
    assert post_log.problem.is_linear_gaussian and not counts.problem.is_linear_gaussian
    assert torch.equal(post_log.x_true, counts.x_true)
    ell = counts_to_line_integrals(counts.problem.y, counts.metadata["I0"])
    torch.testing.assert_close(post_log.problem.y, ell)
    assert 0.7 < float(post_log.problem.reduced_chi2(post_log.x_true)) < 1.3
    assert post_log.metadata["likelihood"] == "post-log"
    assert post_log.solver_defaults["options"] == {"ode_steps": 1}
    with pytest.raises(ValueError, match="noise"):
        get_demo("ct-sparse-view")(size=16, prior=prior, noise="gaussian")
