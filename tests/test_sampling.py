"""diffinv.sample: validation, user-defined contracts, schedules."""

import pytest
import torch

import diffinv
from diffinv.operators import GaussianNoise, InverseProblem, Operator
from diffinv.schedules import geometric_sigmas, karras_sigmas, linear_sigmas
from diffinv.solvers import available_solvers


class Blur1D(Operator):
    """A user's own operator: nothing beyond the documented contract."""

    in_shape = (8,)
    out_shape = (8,)

    def forward(self, x):
        return 0.5 * x + 0.25 * (torch.roll(x, 1, -1) + torch.roll(x, -1, -1))


def user_prior(x, sigma):
    """A user's own prior callable: N(0, I) denoiser."""
    return x / (1 + sigma[:, None] ** 2)


class LaplaceNoise:
    """A user's own noise model."""

    def __init__(self, b):
        self.b = b

    def sample(self, y_clean, generator=None):
        u = torch.rand(y_clean.shape, generator=generator, dtype=y_clean.dtype) - 0.5
        return y_clean - self.b * torch.sign(u) * torch.log1p(-2 * u.abs())

    def log_likelihood(self, y, y_clean):
        return (-(y - y_clean).abs() / self.b - torch.log(torch.tensor(2 * self.b))).sum(-1)

    def chi2(self, y, y_clean):
        return (((y - y_clean) / self.b) ** 2 / 2).sum(-1)

    def n_data(self, y):
        return y.shape[-1]

    def residual_norm(self, y, y_clean):
        return (y - y_clean).norm(dim=-1)


def test_user_operator_noise_and_prior_plug_in():
    g = torch.Generator().manual_seed(0)
    noise = LaplaceNoise(0.1)
    x = torch.randn(1, 8, generator=g)
    prob = InverseProblem(Blur1D(), noise, noise.sample(Blur1D()(x), generator=g))
    for guidance in ("paper", "likelihood"):
        p = diffinv.sample(
            prob,
            user_prior,
            "dps",
            n_samples=4,
            steps=30,
            guidance=guidance,
            zeta=0.3,
            step_size=0.05,
        )
        assert p.samples.shape == (4, 8)
        assert torch.isfinite(p.samples).all()


def test_unknown_solver_and_option_are_named():
    prob = InverseProblem(Blur1D(), GaussianNoise(0.1), torch.zeros(1, 8))
    with pytest.raises(ValueError, match="solver: unknown solver 'nope'"):
        diffinv.sample(prob, user_prior, solver="nope")
    with pytest.raises(ValueError, match="^zetta: unknown option for solver 'dps'"):
        diffinv.sample(prob, user_prior, zetta=1.0)
    with pytest.raises(ValueError, match="n_samples"):
        diffinv.sample(prob, user_prior, n_samples=0)
    with pytest.raises(ValueError, match="steps"):
        diffinv.sample(prob, user_prior, steps=0)
    with pytest.raises(ValueError, match="problem"):
        diffinv.sample("problem", user_prior)
    with pytest.raises(ValueError, match="prior"):
        diffinv.sample(prob, "prior")
    with pytest.raises(ValueError, match="dtype"):
        diffinv.sample(prob, user_prior, dtype=torch.int64)
    with pytest.raises(ValueError, match="schedule"):
        diffinv.sample(prob, user_prior, schedule="cosine")
    assert "dps" in available_solvers()


def test_shape_mismatch_between_prior_and_problem():
    prob = InverseProblem(Blur1D(), GaussianNoise(0.1), torch.zeros(1, 8))

    def prior(x, sigma):
        return x

    prior.event_shape = (1, 8)
    with pytest.raises(ValueError, match="event_shape"):
        diffinv.sample(prob, prior)


@pytest.mark.parametrize("fn", [karras_sigmas, geometric_sigmas, linear_sigmas])
def test_schedules_are_decreasing_and_end_at_zero(fn):
    s = fn(10, 0.01, 50.0)
    assert s.shape == (11,) and s[-1] == 0
    assert float(s[0]) == pytest.approx(50.0) and float(s[-2]) == pytest.approx(0.01)
    assert bool((s[1:] < s[:-1]).all())
    with pytest.raises(ValueError, match="sigma_min"):
        fn(10, 1.0, 0.5)
    with pytest.raises(ValueError, match="steps"):
        fn(0)


def test_karras_matches_formula():
    s = karras_sigmas(4, 0.002, 80.0, rho=7.0)
    i = torch.arange(4, dtype=torch.float64)
    ref = (80.0 ** (1 / 7) + i / 3 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(s[:-1], ref)
