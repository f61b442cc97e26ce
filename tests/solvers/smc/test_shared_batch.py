"""Batch-shared linear algebra gives the plain batched results and stays shared."""

import pytest
import torch

from diffinv.priors import GaussianPrior
from diffinv.solvers.smc import shared_batch as sb
from diffinv.solvers.smc.tweedie_kernel import denoiser_jacobian, tweedie_kernel

F64 = torch.float64
N = 5


def spd(n, g):
    q = torch.randn(n, n, dtype=F64, generator=g)
    return q @ q.T + n * torch.eye(n, dtype=F64)


def shared(m):
    return m[None].expand(N, *m.shape)


def per_item(make):
    return torch.stack([make() for _ in range(N)])


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def test_is_shared_and_take(g):
    m = shared(spd(3, g))
    assert sb.is_shared(m) and not sb.is_shared(m.contiguous())
    assert not sb.is_shared(m[:1].expand(1, 3, 3))  # a single item is not "shared"
    idx = torch.tensor([4, 0, 0, 2, 1])
    assert sb.is_shared(sb.take(m, idx)) and torch.equal(sb.take(m, idx), m.contiguous()[idx])
    free = m.contiguous() + torch.arange(N, dtype=F64)[:, None, None]
    assert torch.equal(sb.take(free, idx), free[idx])


@pytest.mark.parametrize("a_shared", [True, False])
@pytest.mark.parametrize("b_shared", [True, False])
def test_matmul_matches_plain(g, a_shared, b_shared):
    a = shared(torch.randn(3, 4, dtype=F64, generator=g)) if a_shared else \
        torch.randn(N, 3, 4, dtype=F64, generator=g)
    b = shared(torch.randn(4, 2, dtype=F64, generator=g)) if b_shared else \
        torch.randn(N, 4, 2, dtype=F64, generator=g)
    out = sb.matmul(a, b)
    assert torch.allclose(out, a.contiguous() @ b.contiguous(), atol=1e-12)
    assert sb.is_shared(out) == (a_shared and b_shared)


def test_matvec_and_triangular_solve_match_plain(g):
    m = shared(spd(4, g))
    v = torch.randn(N, 4, dtype=F64, generator=g)
    plain = (m.contiguous() @ v[..., None])[..., 0]
    assert torch.allclose(sb.matvec(m, v), plain, atol=1e-12)
    low = torch.linalg.cholesky(m)
    sol = sb.tril_solve_vec(low[:1].expand(N, 4, 4), v)
    assert torch.allclose((low @ sol[..., None])[..., 0], v, atol=1e-12)


@pytest.mark.parametrize("b_shared", [True, False])
def test_cholesky_and_solve_match_plain(g, b_shared):
    m = shared(spd(4, g))
    low = sb.cholesky(m)
    assert sb.is_shared(low)
    assert torch.allclose(low, torch.linalg.cholesky(m.contiguous()), atol=1e-12)
    b = shared(torch.randn(4, 3, dtype=F64, generator=g)) if b_shared else \
        torch.randn(N, 4, 3, dtype=F64, generator=g)
    x = sb.cholesky_solve(b, low)
    assert torch.allclose(m.contiguous() @ x, b.contiguous(), atol=1e-10)
    assert sb.is_shared(x) == b_shared


def test_pointwise_and_symmetrize(g):
    m = shared(torch.randn(3, 3, dtype=F64, generator=g))
    s = sb.symmetrize(m)
    assert sb.is_shared(s) and torch.equal(s[2], 0.5 * (m[0] + m[0].T))
    free = torch.randn(N, 3, 3, dtype=F64, generator=g)
    both = sb.pointwise(torch.add, m, free)
    assert not sb.is_shared(both) and torch.equal(both, m + free)
    single = sb.to_float64(shared(m[0].float()))
    assert single.dtype == F64 and sb.is_shared(single)


def test_gaussian_prior_kernel_factors_once(g):
    """A Gaussian prior's Jacobian is one matrix: the kernel's factor stays one matrix, and
    equals the factor of the materialised Jacobian."""
    cov = spd(6, g) / 6
    prior = GaussianPrior(torch.zeros(6, dtype=F64), cov)
    x = torch.randn(N, 6, dtype=F64, generator=g)
    x0, jac = denoiser_jacobian(prior, x, 2.0, None)
    assert sb.is_shared(jac)
    kern = tweedie_kernel(x, x0, jac, 2.0, 1.0)
    plain = tweedie_kernel(x, x0, jac.contiguous(), 2.0, 1.0)
    assert sb.is_shared(kern.chol) and not sb.is_shared(plain.chol)
    assert torch.allclose(kern.chol, plain.chol, atol=1e-12)
    m = torch.randn(N, 6, 2, dtype=F64, generator=g)
    assert torch.allclose(kern.cov_times(m), plain.cov_times(m), atol=1e-12)
