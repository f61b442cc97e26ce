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
