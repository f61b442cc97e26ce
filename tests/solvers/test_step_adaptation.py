"""Dual-averaging step adaptation (diffinv.solvers.step_adaptation) and its use in DAPS."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import diffinv
from diffinv.solvers.daps import ACCEPTANCE_FLOOR
from diffinv.solvers.step_adaptation import DualAveraging
from diffinv.testing.smc_cases import F64, gaussian_case


def _mala_acceptance(step: float, g: torch.Generator, n: int = 2000, dim: int = 10) -> float:
    """Mean MALA acceptance on N(0, I) in ``dim`` dimensions from stationarity."""
    x = torch.randn(n, dim, dtype=F64, generator=g)
    xn = x - step * x + math.sqrt(2 * step) * torch.randn(n, dim, dtype=F64, generator=g)
    fwd = ((xn - x + step * x) ** 2).sum(1)
    bwd = ((x - xn + step * xn) ** 2).sum(1)
    log_a = -0.5 * (xn**2).sum(1) + 0.5 * (x**2).sum(1) + (fwd - bwd) / (4 * step)
    return float(torch.exp(log_a.clamp(max=0.0)).mean())


@pytest.mark.parametrize("start", [1e-3, 5.0])
def test_dual_averaging_reaches_the_target_acceptance_on_a_gaussian(start):
    g = torch.Generator().manual_seed(0)
    da = DualAveraging(start, 0.574)
    for _ in range(300):
        da.update(_mala_acceptance(da.step, g))
    assert _mala_acceptance(da.averaged, g, n=20000) == pytest.approx(0.574, abs=0.03)


def test_dual_averaging_bad_arguments():
    with pytest.raises(ValueError, match="step"):
        DualAveraging(0.0, 0.5)
    with pytest.raises(ValueError, match="target"):
        DualAveraging(0.1, 1.0)


def test_daps_hmc_adapts_its_step_to_the_target_acceptance():
    """A sharp likelihood with a badly wrong curvature bound (``lipschitz=0``) and a far too
    large starting fraction: fixed steps (``target_acceptance=None``) accept almost nothing;
    the default adapted steps reach the target 0.65 at the later levels."""
    prior, problem = gaussian_case(n=6, m=6, sigma_y=0.05, seed=2)
    common = dict(solver="daps", n_samples=32, steps=20, seed=0, dtype=F64, ode_steps=1,
                  data_step="hmc", langevin_steps=20, langevin_lr=1.9, lipschitz=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fixed = diffinv.sample(problem, prior, target_acceptance=None, **common)
        adapted = diffinv.sample(problem, prior, **common)  # default: adapt (HMC)
    late = slice(10, None)
    acc_fixed = fixed.diagnostics["acceptance_per_step"][late]
    acc = adapted.diagnostics["acceptance_per_step"][late]
    assert sum(acc_fixed) / len(acc_fixed) < 0.2
    assert sum(acc) / len(acc) == pytest.approx(0.65, abs=0.12)
    fractions = adapted.diagnostics["step_fraction_per_step"]
    assert fractions[0] == 1.9 and fractions[-1] < 0.5 * fractions[0]


def test_daps_langevin_adapts_a_too_small_step_up():
    """Unadjusted Langevin from a tiny fraction: the would-be MALA acceptance is near one;
    adaptation grows the step until it reaches the target."""
    prior, problem = gaussian_case(n=6, m=6, sigma_y=0.05, seed=2)
    post = diffinv.sample(problem, prior, solver="daps", n_samples=32, steps=20, seed=0,
                          dtype=F64, ode_steps=1, data_step="langevin", langevin_steps=20,
                          langevin_lr=0.005, target_acceptance=0.574)
    acc = post.diagnostics["acceptance_per_step"][10:]
    assert sum(acc) / len(acc) == pytest.approx(0.574, abs=0.12)
    assert post.diagnostics["step_fraction_per_step"][-1] > 10 * 0.005


def test_daps_warns_when_acceptance_stays_below_the_floor():
    prior, problem = gaussian_case(n=6, m=6, sigma_y=0.05, seed=2)
    with pytest.warns(RuntimeWarning, match=f"below {ACCEPTANCE_FLOOR} at levels"):
        diffinv.sample(problem, prior, solver="daps", n_samples=8, steps=10, seed=0, dtype=F64,
                       ode_steps=1, data_step="langevin", langevin_steps=3, langevin_lr=1.9,
                       lipschitz=0.0)


def test_daps_rejects_a_bad_target():
    prior, problem = gaussian_case()
    with pytest.raises(ValueError, match="target_acceptance"):
        diffinv.sample(problem, prior, solver="daps", n_samples=2, steps=2,
                       data_step="hmc", target_acceptance=1.5)
