"""The whitened real system applied through the operator equals the dense one."""

from __future__ import annotations

import pytest
import torch

from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.linear_gaussian import WhitenedSystem, real_linear_system
from diffinv.operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask

F64 = torch.float64


def mri_problem() -> InverseProblem:
    """Complex data, per-entry sigmas and a noise mask (some entries not measured)."""
    g = torch.Generator().manual_seed(0)
    maps = birdcage_maps((8, 8), 3, dtype=torch.complex128)
    op = MultiCoilMRI(maps, mask=cartesian_mask((8, 8), 2, 0.25, seed=0))
    y = op(torch.rand(1, 1, 8, 8, dtype=F64, generator=g))
    sigma = 0.05 + 0.1 * torch.rand(y.shape[1:], dtype=F64, generator=g)
    mask = torch.rand(y.shape[1:], generator=g) > 0.2
    return InverseProblem(op, GaussianNoise(sigma, mask=mask), y)


def ct_problem() -> InverseProblem:
    op = ParallelBeamRadon(8, 6, backend="sparse")
    y = op(torch.rand(1, 1, 8, 8, dtype=F64, generator=torch.Generator().manual_seed(1)))
    return InverseProblem(op, GaussianNoise(0.1), y)


@pytest.mark.parametrize("make", [mri_problem, ct_problem])
def test_whitened_system_equals_the_whitened_dense_matrix(make):
    problem = make()
    system = WhitenedSystem.from_problem(problem, (1, 8, 8))
    a, y, var = real_linear_system(problem, (1, 8, 8))
    aw, yw = a / var.sqrt()[:, None], y / var.sqrt()
    assert (system.m, system.n) == tuple(aw.shape)
    torch.testing.assert_close(system.yw, yw, rtol=1e-13, atol=1e-13)
    assert system.log_std_sum() == pytest.approx(0.5 * float(torch.log(var).sum()), rel=1e-13)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(3, system.n, dtype=F64, generator=g)
    u = torch.randn(3, system.m, dtype=F64, generator=g)
    torch.testing.assert_close(system.apply(z), z @ aw.T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(system.adjoint(u), u @ aw, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(system.normal(z[0]), aw.T @ (aw @ z[0]), rtol=1e-12,
                               atol=1e-12)


def test_whitened_system_rejects_a_wrong_event_shape():
    with pytest.raises(ValueError, match="event_shape"):
        WhitenedSystem.from_problem(ct_problem(), (1, 4, 4))
