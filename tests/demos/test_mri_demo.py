"""The mri-multicoil demo: exact PCA prior denoiser, consistent problem, solver runs."""

from __future__ import annotations

import pytest
import torch

import diffinv
from diffinv.demos import available_demos, get_demo
from diffinv.demos.mri import LowRankGaussianPrior, make_mri_problem
from diffinv.priors import GaussianPrior


def test_low_rank_prior_denoiser_is_exact():
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(30, 2, 3, 3, dtype=torch.float64, generator=g) * torch.linspace(
        0.1, 2, 18, dtype=torch.float64).reshape(2, 3, 3)
    prior = LowRankGaussianPrior.fit(samples, rank=5, tau=0.3)
    cov = prior.basis @ torch.diag(prior.eigvals) @ prior.basis.T + 0.09 * torch.eye(18)
    ref = GaussianPrior(prior.mean.reshape(2, 3, 3), cov)
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64, generator=g)
    sigma = torch.tensor([0.01, 0.3, 1.0, 30.0], dtype=torch.float64)
    torch.testing.assert_close(prior(x, sigma), ref(x, sigma))
    torch.testing.assert_close(prior.precision_apply(x).reshape(4, -1),
                               x.reshape(4, -1) @ torch.linalg.inv(cov))


def test_demo_registered_and_consistent():
    assert "mri-multicoil" in available_demos()
    demo = get_demo("mri-multicoil")(seed=1, size=16)
    p = demo.problem
    assert p.image_shape == (2, 16, 16)
    assert p.y.shape == (1, 8, 16, 16) and p.y.is_complex()
    chi2 = float(p.reduced_chi2(demo.x_true))
    assert chi2 == pytest.approx(1.0, abs=0.1)  # the truth fits the data at the noise level
    assert demo.to_image(demo.x_true).shape == (1, 16, 16)


def test_demo_dps_runs_and_prior_is_swappable():
    calls = []
    base = make_mri_problem(size=16, seed=0)[1]

    def prior(x, sigma):
        calls.append(1)
        return base(x, sigma)

    problem, used, x_true, mri = make_mri_problem(size=16, seed=0, prior=prior)
    assert used is prior
    post = diffinv.sample(problem, used, solver="dps", n_samples=2, steps=10,
                          guidance="paper", zeta=0.3)
    assert post.samples.shape == (2, 2, 16, 16) and len(calls) == 10
    assert bool(torch.isfinite(post.samples).all())


def test_curvature_bound_and_exact_steps():
    """The noise is a masked GaussianNoise (exact CG steps apply), and ``mri_curvature``
    bounds the largest eigenvalue of ``A^T W A`` (power iteration)."""
    from diffinv.demos.mri import mri_curvature
    from diffinv.solvers.gaussian_data import LinearGaussianData

    problem, _, _, mri = make_mri_problem(size=16, seed=0)
    assert problem.is_linear_gaussian
    assert problem.noise.n_data(problem.y) == 2 * 8 * int(mri.mask.sum())
    top = LinearGaussianData(problem, torch.float64).lipschitz((2, 16, 16)) / 1.05
    bound = mri_curvature(mri, 0.005)
    assert top <= bound * (1 + 1e-6) and top > 0.5 * bound


def test_learned_prior_and_random_phantom_options():
    from diffinv.datasets.registry import random_complex_phantoms
    from diffinv.operators import RealToComplex
    from diffinv.priors.base import shape_mismatch

    demo = get_demo("mri-multicoil")(seed=1001, size=32, prior="learned", phantom="random")
    assert tuple(demo.prior.image_shape) == (2, 32, 32)  # the shipped mri-phantom prior
    drawn = random_complex_phantoms(1, 32, torch.Generator().manual_seed(1001))
    torch.testing.assert_close(demo.x_true, RealToComplex().adjoint(drawn).real.float())
    assert demo.problem.is_linear_gaussian
    assert 0.8 < float(demo.problem.reduced_chi2(demo.x_true)) < 1.2
    assert "prior 'mri-phantom'" in demo.description
    # the learned prior is fully convolutional: other sizes take it too
    small = get_demo("mri-multicoil")(size=16, prior="learned")
    assert shape_mismatch(small.prior, (2, 16, 16)) is None
    with pytest.raises(ValueError, match="prior"):
        get_demo("mri-multicoil")(size=16, prior="wavelet")
    with pytest.raises(ValueError, match="phantom"):
        get_demo("mri-multicoil")(size=16, phantom="brainweb")
