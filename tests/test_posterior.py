"""Posterior summaries, intervals, coverage and atomic HDF5 persistence."""

import os

import h5py
import numpy as np
import pytest
import torch

from diffinv import Posterior, load_posterior
from diffinv.posterior import weighted_quantile

g = torch.Generator().manual_seed(2)


def test_summaries_of_gaussian_samples():
    s = 2.0 + 3.0 * torch.randn(20000, 1, 4, 4, dtype=torch.float64, generator=g)
    p = Posterior(s)
    torch.testing.assert_close(
        p.mean, torch.full((1, 4, 4), 2.0, dtype=torch.float64), atol=0.1, rtol=0
    )
    torch.testing.assert_close(
        p.std, torch.full((1, 4, 4), 3.0, dtype=torch.float64), atol=0.1, rtol=0
    )
    lo, hi = p.interval(0.9)
    torch.testing.assert_close(hi, torch.full_like(hi, 2 + 3 * 1.6448536), atol=0.15, rtol=0)
    # truth drawn from the same distribution is covered ~90% of the time
    truths = 2.0 + 3.0 * torch.randn(400, 1, 4, 4, dtype=torch.float64, generator=g)
    inside = ((truths >= lo) & (truths <= hi)).to(torch.float64).mean()
    assert abs(float(inside) - 0.9) < 0.03
    assert p.coverage(truths[0], 0.9) == float(
        ((truths[0] >= lo) & (truths[0] <= hi)).double().mean()
    )


def test_weighted_quantiles_equal_repeated_samples():
    vals = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    w = torch.tensor([1.0, 3.0, 0.0, 4.0], dtype=torch.float64)
    rep = torch.tensor([0.0] + [1.0] * 3 + [3.0] * 4, dtype=torch.float64)[:, None]
    for q in (0.1, 0.5, 0.8):
        wq = float(weighted_quantile(vals, w, q))
        assert float(rep.quantile(0.0)) <= wq <= float(rep.quantile(1.0))
    # equal weights reproduce the unweighted median
    x = torch.randn(101, 3, dtype=torch.float64, generator=g)
    torch.testing.assert_close(weighted_quantile(x, torch.ones(101), 0.5), x.median(0).values)


def test_weighted_mean_std_and_ess():
    s = torch.tensor([[0.0], [10.0]], dtype=torch.float64)
    p = Posterior(s, weights=torch.tensor([3.0, 1.0]))
    assert float(p.mean) == pytest.approx(2.5)
    assert p.ess == pytest.approx(1 / (0.75**2 + 0.25**2))
    with pytest.raises(ValueError, match="weights"):
        Posterior(s, weights=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="weights"):
        Posterior(s, weights=torch.tensor([-1.0, 1.0]))


def test_save_load_roundtrip(tmp_path):
    s = torch.randn(5, 1, 3, 3, generator=g)
    p = Posterior(
        s, torch.rand(5, generator=g) + 0.1, {"nfe": 12, "ess": [1.0, 2.0]}, {"units": "Jy/pixel"}
    )
    path = p.save(tmp_path / "post.h5")
    q = load_posterior(path)
    torch.testing.assert_close(q.samples, p.samples)
    torch.testing.assert_close(q.weights, p.weights)
    assert q.diagnostics == {"nfe": 12, "ess": [1.0, 2.0]}
    assert q.metadata["units"] == "Jy/pixel"
    with h5py.File(path) as f:
        np.testing.assert_allclose(f["mean"][...], p.mean.numpy(), rtol=1e-6)


def test_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    p = Posterior(torch.randn(3, 2, generator=g))
    target = tmp_path / "post.h5"
    real = h5py.File.create_dataset

    def exploding(self, name, *a, **k):
        if name == "std":
            raise KeyboardInterrupt("simulated interruption")
        return real(self, name, *a, **k)

    monkeypatch.setattr(h5py.File, "create_dataset", exploding)
    with pytest.raises(KeyboardInterrupt):
        p.save(target)
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_posterior(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not a diffinv posterior"):
        load_posterior(other)
    with pytest.raises(FileNotFoundError, match="directory"):
        Posterior(torch.zeros(2, 2)).save(tmp_path / "no" / "dir.h5")


def test_bad_posterior_arguments():
    with pytest.raises(ValueError, match="samples"):
        Posterior(torch.zeros(0, 3))
    p = Posterior(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="level"):
        p.interval(1.5)
    with pytest.raises(ValueError, match="x_true"):
        p.coverage(torch.zeros(4), 0.9)


@pytest.mark.parametrize("n", [4, 8, 16])
def test_prediction_intervals_cover_a_new_draw_at_the_stated_rate(n):
    # per pixel, a Gaussian "posterior" N(mu, s^2) with pixel-dependent mu and s; n iid
    # samples and an independent truth from it: the prediction interval covers the truth at
    # its level for any n, the sample-quantile interval well below it for small n
    g = torch.Generator().manual_seed(n)
    pixels = 40_000
    mu = torch.randn(pixels, dtype=torch.float64, generator=g)
    s = 0.1 + torch.rand(pixels, dtype=torch.float64, generator=g)
    samples = mu + s * torch.randn(n, pixels, dtype=torch.float64, generator=g)
    truth = mu + s * torch.randn(pixels, dtype=torch.float64, generator=g)
    post = Posterior(samples)
    weighted = Posterior(samples, torch.full((n,), 3.0))  # equal weights: the same ESS, n
    for level in (0.5, 0.9, 0.95):
        cov = post.coverage(truth, level, kind="prediction")
        assert abs(cov - level) < 0.012, (n, level, cov)  # 40,000 pixels: sd <= 0.0025
        assert weighted.coverage(truth, level, kind="prediction") == pytest.approx(cov)
    # sample quantiles: at most (n - 1) / (n + 1) of new draws fall inside the sample range
    assert post.coverage(truth, 0.9) < (n - 1) / (n + 1) + 0.012
    assert post.coverage(truth, 0.9) < 0.9 - 0.01
    nominal, empirical = post.calibration_curve(truth, [0.2, 0.8], kind="prediction")
    assert torch.allclose(empirical, nominal, atol=0.012)


def test_prediction_interval_needs_more_than_one_effective_sample():
    post = Posterior(torch.randn(3, 4), torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="effective sample size"):
        post.interval(0.9, kind="prediction")
    with pytest.raises(ValueError, match="kind"):
        post.interval(0.9, kind="hpd")
