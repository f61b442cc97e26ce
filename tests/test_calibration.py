"""Calibration curves and conformal recalibration on Gaussian problems with exact posteriors.

Each problem draws ``x_true`` from a Gaussian prior and data from the likelihood; the exact
posterior (``GaussianPrior.posterior``) gives calibrated draws, and shrinking them by 0.5
about their mean gives a deliberately over-confident posterior.  Problems are i.i.d., so the
conformal guarantee applies across problems: held-out coverage >= level and, without ties,
< level + 1/(n+1).  Pixels of one image are correlated, so the error bar used is binomial in
the number of *problems* (conservative): 3 * sqrt(level (1 - level) / n_problems).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import diffinv
from diffinv.calibration import (
    Calibration,
    available_calibrations,
    calibrate,
    conformity_scores,
    load_calibration,
)
from diffinv.operators import InverseProblem
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.noise import GaussianNoise
from diffinv.posterior import Posterior
from diffinv.priors import GaussianPrior

D = 6


def problems(n_problems, seed, shrink=1.0, n_samples=400):
    """``(posteriors, truths)`` for i.i.d. linear-Gaussian problems sharing prior and operator."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(D, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    prior = GaussianPrior(torch.zeros(D, dtype=torch.float64), b @ b.T / D + 0.2 * torch.eye(D))
    op = MatrixOperator(torch.randn(3, D, generator=torch.Generator().manual_seed(1),
                                    dtype=torch.float64))
    posts, truths = [], []
    for _ in range(n_problems):
        x = prior.sample(1, g)
        y = GaussianNoise(0.5).sample(op(x), g)
        exact = prior.posterior(InverseProblem(op, GaussianNoise(0.5), y))
        s = exact.sample(n_samples, g)
        s = exact.mean + shrink * (s - exact.mean)
        posts.append(Posterior(s))
        truths.append(x[0])
    return posts, truths


def pooled_coverage(posts, truths, level, cal=None):
    inside = []
    for p, x in zip(posts, truths):
        lo, hi = cal.interval(p) if cal is not None else p.interval(level)
        inside.append(((x >= lo) & (x <= hi)).to(torch.float64))
    return float(torch.cat(inside).mean())


def test_calibration_curve_of_exact_posterior_is_diagonal():
    posts, truths = problems(150, seed=2, n_samples=300)
    levels = [0.2, 0.5, 0.8, 0.95]
    curves = [p.calibration_curve(x, levels) for p, x in zip(posts, truths)]
    nominal = curves[0][0]
    empirical = torch.stack([c[1] for c in curves]).mean(0)
    assert torch.allclose(nominal, torch.tensor(levels, dtype=torch.float64))
    err = 3 * torch.sqrt(nominal * (1 - nominal) / len(posts))
    assert bool(((empirical - nominal).abs() < err).all()), (empirical, nominal)
    # an over-confident posterior falls clearly below the diagonal
    narrow, t2 = problems(150, seed=2, shrink=0.5, n_samples=300)
    emp_narrow = torch.stack([p.calibration_curve(x, levels)[1] for p, x in zip(narrow, t2)])
    assert bool((emp_narrow.mean(0) < nominal - err).all())


def test_calibration_curve_default_levels_and_errors():
    posts, truths = problems(1, seed=3)
    nominal, empirical = posts[0].calibration_curve(truths[0])
    assert nominal.shape == empirical.shape == (19,)
    assert bool(((empirical >= 0) & (empirical <= 1)).all())
    assert bool((empirical[1:] >= empirical[:-1]).all())  # nested intervals
    with pytest.raises(ValueError, match="levels"):
        posts[0].calibration_curve(truths[0], [0.5, 1.0])
    with pytest.raises(ValueError, match="x_true"):
        posts[0].calibration_curve(torch.zeros(D + 1))


@pytest.mark.parametrize("level", [0.9, 0.7])
def test_conformal_recalibration_restores_coverage(level):
    cal_posts, cal_truths = problems(200, seed=10, shrink=0.5)
    test_posts, test_truths = problems(200, seed=11, shrink=0.5)
    before = pooled_coverage(test_posts, test_truths, level)
    cal = diffinv.calibrate(cal_posts, cal_truths, level=level)
    assert isinstance(cal, Calibration) and cal.n_scores == 200 * D
    # the posterior is half as wide as it should be: the scale is close to 2
    assert 1.6 < cal.scale < 2.4
    after = pooled_coverage(test_posts, test_truths, level, cal)
    err = 3 * math.sqrt(level * (1 - level) / len(test_posts))
    assert before < level - err
    assert abs(after - level) < err, (before, after)
    # apply() stretches samples so that the plain interval equals the recalibrated one
    applied = cal.apply(test_posts[0])
    lo, hi = applied.interval(level)
    lo2, hi2 = cal.interval(test_posts[0])
    assert torch.allclose(lo, lo2, atol=1e-10) and torch.allclose(hi, hi2, atol=1e-10)
    assert applied.metadata["calibration"]["scale"] == cal.scale
    assert torch.equal(test_posts[0].samples, problems(1, seed=11, shrink=0.5)[0][0].samples)


def test_conformal_quantile_uses_finite_sample_correction():
    # one pixel per posterior, truth placed at a known score: scores are 1..n exactly
    n = 19
    posts, truths = [], []
    base = torch.linspace(-1, 1, 1001, dtype=torch.float64)[:, None]  # median 0
    post = Posterior(base)
    _, hi = post.interval(0.5)
    for k in range(1, n + 1):
        posts.append(post)
        truths.append(hi * k)
    scores = torch.cat([conformity_scores(p, x, 0.5) for p, x in zip(posts, truths)])
    assert torch.allclose(scores, torch.arange(1, n + 1, dtype=torch.float64))
    cal = calibrate(posts, truths, level=0.5)
    assert cal.scale == pytest.approx(math.ceil((n + 1) * 0.5))  # 10th smallest, not 9.5
    with pytest.raises(ValueError, match="too few"):
        calibrate(posts[:5], truths[:5], level=0.9)


def test_save_load_roundtrip_by_path_and_name(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFINV_HOME", str(tmp_path / "home"))
    posts, truths = problems(40, seed=4, shrink=0.5)
    cal = calibrate(posts, truths, level=0.8, metadata={"solver": "exact-shrunk"})
    path = cal.save(tmp_path / "cal.json")
    assert json.loads(path.read_text())["format"] == "diffinv.calibration/1"
    back = load_calibration(path)
    assert back == cal
    assert available_calibrations() == []
    saved = cal.save(name="mri-daps")
    assert saved.parent == tmp_path / "home" / "calibrations"
    assert available_calibrations() == ["mri-daps"]
    by_name = diffinv.load_calibration("mri-daps")
    assert by_name.scale == cal.scale and by_name.metadata == {"solver": "exact-shrunk"}
    assert not list(saved.parent.glob(".*"))  # no temporary files left behind
    with pytest.raises(FileNotFoundError, match="mri-dap"):
        load_calibration("mri-dap")
    with pytest.raises(ValueError, match="name"):
        cal.save(name="../escape")
    with pytest.raises(ValueError, match="path, name"):
        cal.save()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a diffinv calibration"):
        load_calibration(bad)


def test_calibrate_rejects_bad_input():
    posts, truths = problems(3, seed=5)
    with pytest.raises(ValueError, match="level"):
        calibrate(posts, truths, level=1.2)
    with pytest.raises(ValueError, match="truths"):
        calibrate(posts, truths[:2])
    with pytest.raises(ValueError, match="truths"):
        calibrate(posts, [torch.zeros(D + 1)] * 3)
    with pytest.raises(ValueError, match="truths"):
        calibrate(posts, [torch.full((D,), float("nan"))] * 3)
    with pytest.raises(ValueError, match="posteriors"):
        calibrate([], [])
