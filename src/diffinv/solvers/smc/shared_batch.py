"""Batched linear algebra that keeps a batch-shared matrix a single matrix.

The Tweedie SMC kernel (:mod:`diffinv.solvers.smc.tweedie_kernel`) works on one ``(n, n)`` matrix
per particle.  For a Gaussian prior every particle has the same denoiser Jacobian, which the
prior returns as one matrix expanded over the batch (stride 0 along the particle axis).
These helpers take such *shared* arrays (``(N, a, b)`` with ``stride(0) == 0``) and do the
work once: a factorisation of one matrix instead of ``N``, and products with per-particle
vectors as one matrix product, so the kernel costs ``O(n^3 + N n^2)`` per step instead of
``O(N n^3)``.  Every helper gives the same values as the plain batched call (up to rounding)
and returns shared outputs when all its matrix inputs are shared.
"""

from __future__ import annotations

import torch

__all__ = ["cholesky", "cholesky_solve", "is_shared", "matmul", "matvec",
           "pointwise", "symmetrize", "take", "to_float64", "tril_solve_vec"]


def is_shared(t: torch.Tensor) -> bool:
    """True for a 3-d array that is one matrix expanded over its leading (batch) axis."""
    return t.dim() == 3 and t.shape[0] > 1 and t.stride(0) == 0


def _expand(one: torch.Tensor, n: int) -> torch.Tensor:
    return one.expand(n, *one.shape[1:])


def take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]`` along the batch axis; a shared array stays shared (no copy)."""
    if is_shared(t):
        return _expand(t[:1], idx.shape[0])
    return t[idx]


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for ``(N, p, q)`` and ``(N, q, k)``."""
    sa, sb = is_shared(a), is_shared(b)
    if sa and sb:
        return _expand(a[:1] @ b[:1], a.shape[0])
    if sa:  # (a0 b_i)^T = b_i^T a0^T: one product with the batch folded into the rows
        return (b.transpose(-1, -2) @ a[0].transpose(-1, -2)).transpose(-1, -2)
    if sb:
        return a @ b[0]
    return a @ b


def matvec(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``a_i v_i`` for ``a`` ``(N, p, q)`` and ``v`` ``(N, q)``; ``(N, p)``."""
    if is_shared(a):
        return v @ a[0].transpose(-1, -2)
    return (a @ v[..., None])[..., 0]


def cholesky(m: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factors of ``(N, n, n)`` matrices (one factorisation if shared)."""
    if is_shared(m):
        return _expand(torch.linalg.cholesky(m[:1]), m.shape[0])
    return torch.linalg.cholesky(m)


def cholesky_solve(b: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """``(L L^T)^{-1} b`` for ``b`` ``(N, n, k)`` and factors ``chol`` ``(N, n, n)``."""
    sl, sb = is_shared(chol), is_shared(b)
    if sl and sb:
        return _expand(torch.cholesky_solve(b[:1], chol[:1]), b.shape[0])
    if sl:  # one factor: solve for all N * k right-hand sides at once
        n_batch, n, k = b.shape
        cols = b.transpose(0, 1).reshape(n, n_batch * k)
        out = torch.cholesky_solve(cols, chol[0])
        return out.reshape(n, n_batch, k).transpose(0, 1)
    return torch.cholesky_solve(b, chol)


def tril_solve_vec(chol: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``L_i^{-1} v_i`` for lower-triangular ``chol`` ``(N, r, r)`` and ``v`` ``(N, r)``."""
    if is_shared(chol):
        return torch.linalg.solve_triangular(chol[0], v.T, upper=False).T
    return torch.linalg.solve_triangular(chol, v[..., None], upper=False)[..., 0]


def pointwise(fn, *arrays: torch.Tensor) -> torch.Tensor:
    """``fn(*arrays)`` for an item-by-item ``fn`` of ``(N, p, q)`` arrays: evaluated on one
    item and kept shared when every array is shared."""
    if all(is_shared(a) for a in arrays):
        return _expand(fn(*(a[:1] for a in arrays)), arrays[0].shape[0])
    return fn(*arrays)


def symmetrize(m: torch.Tensor) -> torch.Tensor:
    """``(m + m^T) / 2`` for ``(N, n, n)`` arrays (once if shared)."""
    return pointwise(lambda t: 0.5 * (t + t.transpose(-1, -2)), m)


def to_float64(m: torch.Tensor) -> torch.Tensor:
    """``m`` in float64, still shared if it was."""
    if is_shared(m):
        return _expand(m[:1].to(torch.float64), m.shape[0])
    return m.to(torch.float64)
