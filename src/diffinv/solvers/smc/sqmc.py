r"""Hilbert ordering of particles and randomised quasi-Monte Carlo noise (SQMC) for SMC.

Two variance-reduction tools that keep an SMC run consistent and lower the noise of what
one run estimates (for instance the weights of the modes of a multimodal posterior):

* **Hilbert-ordered resampling** (:func:`hilbert_order`, used by the ``ordered`` scheme of
  :mod:`diffinv.solvers.smc.resampling`): systematic resampling applied to the particles
  sorted along a Hilbert curve, so that the count given to any small region of space (not
  only to each particle) stays within a few units of ``N`` times its weight.  Gerber,
  Chopin & Whiteley (2019), "Negative association, ordering and convergence of resampling
  methods", Annals of Statistics 47(4).
* **Randomised QMC moves** (:func:`rqmc_normals`): the standard normals of the proposal come
  from one scrambled Sobol point set per run and step, assigned to the particles in the
  Hilbert order of the states they move from, so that neighbouring particles (and the
  copies of one parent) get well-spread noise instead of independent noise.  With the
  ordered resampling this is the sequential quasi-Monte Carlo of Gerber & Chopin (2015),
  "Sequential quasi Monte Carlo", JRSS B 77(3), with the systematic uniform in place of the
  first QMC coordinate.  Each point of an Owen-scrambled set is uniform on the cube, so each
  particle's noise is still ``N(0, I)``; the points are dependent, which is the point.

The Hilbert index is computed on the particles' projections onto their ``max_dims`` leading
principal axes (all axes when there are fewer), scaled to ``[0, 2^bits)`` per axis (``bits``
= ``min(62 // axes, 16)``), with
Skilling's algorithm ("Programming the Hilbert curve", AIP Conf. Proc. 707, 2004).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["HILBERT_DIMS", "NOISES", "child_generator", "hilbert_key", "hilbert_order",
           "leading_axes", "move_normals", "rqmc_normals"]

NOISES = ("pseudo", "rqmc")

HILBERT_DIMS = 8  # principal axes on which the Hilbert index is computed
KEY_BITS = 62  # bits of the int64 Hilbert key (split over the axes)
EXACT_PCA_DIM = 256  # dimension up to which the principal axes come from an eigh
MAX_BITS = 16  # bits per axis at most (65,536 cells per axis: finer than any particle cloud)
SOBOL_MAX_DIM = torch.quasirandom.SobolEngine.MAXDIM  # beyond: the rest are pseudo-random


def hilbert_key(coords: torch.Tensor, bits: int) -> torch.Tensor:
    """Index along the ``k``-dimensional Hilbert curve of integer points.

    Parameters
    ----------
    coords : torch.Tensor
        ``(N, k)`` int64 coordinates in ``[0, 2^bits)``.
    bits : int
        Bits per axis; ``k * bits <= 62``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` int64 keys in ``[0, 2^(k bits))``; consecutive keys are adjacent cells.
    """
    if coords.ndim != 2 or coords.dtype != torch.int64:
        raise ValueError("coords: expected an (N, k) int64 tensor")
    k = coords.shape[1]
    if bits < 1 or k * bits > KEY_BITS:
        raise ValueError(f"bits: expected 1 <= bits and k * bits <= {KEY_BITS}, got "
                         f"k={k}, bits={bits}")
    x = coords.cpu().numpy().astype(np.int64).T.copy()  # (k, N): numpy is cheaper per op
    top = 1 << (bits - 1)
    q = top
    while q > 1:  # inverse undo of excess work (Skilling's AxesToTranspose)
        p = q - 1
        for i in range(k):
            hit = (x[i] & q) != 0
            swap = np.where(hit, 0, (x[0] ^ x[i]) & p)
            x[0] = np.where(hit, x[0] ^ p, x[0] ^ swap)
            if i:
                x[i] ^= swap
        q >>= 1
    for i in range(1, k):  # Gray encode
        x[i] ^= x[i - 1]
    t = np.zeros_like(x[0])
    q = top
    while q > 1:
        t = np.where((x[k - 1] & q) != 0, t ^ (q - 1), t)
        q >>= 1
    x ^= t[None]
    # interleave the transposed bits, most significant first: bit b of axis i lands at
    # position (bits - 1 - b) * k + i from the top
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    planes = (x[:, :, None] >> shifts[None, None, :]) & 1  # (k, N, bits)
    planes = planes.transpose(1, 2, 0).reshape(x.shape[1], bits * k)
    weights = np.left_shift(np.int64(1), np.arange(bits * k - 1, -1, -1, dtype=np.int64))
    key = (planes * weights[None]).sum(1)
    return torch.from_numpy(key).to(coords.device)


def hilbert_order(points: torch.Tensor, max_dims: int = HILBERT_DIMS) -> torch.Tensor:
    """Permutation sorting ``points`` ``(N, n)`` along a Hilbert curve.

    The curve runs in the space of the ``min(n, max_dims)`` leading principal axes of the
    (centred) points, each scaled to its range.  Identical points stay contiguous (the sort
    is stable), so the copies of one resampled parent are neighbours.

    Returns
    -------
    torch.Tensor
        ``(N,)`` int64 indices: ``points[order]`` is in Hilbert order.
    """
    x = points.reshape(points.shape[0], -1).to(torch.float64)
    n = x.shape[0]
    if n < 2:
        return torch.arange(n, device=x.device)
    xc = x - x.mean(0)
    k = min(x.shape[1], int(max_dims))
    if x.shape[1] > k:
        xc = xc @ leading_axes(xc, k)
    bits = min(KEY_BITS // k, MAX_BITS)
    lo, hi = xc.min(0).values, xc.max(0).values
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    cells = ((xc - lo) / span * (2**bits)).floor().clamp(0, 2**bits - 1).to(torch.int64)
    return torch.sort(hilbert_key(cells, bits), stable=True).indices


def leading_axes(xc: torch.Tensor, k: int, iterations: int = 4) -> torch.Tensor:
    """``(n, k)`` orthonormal leading principal axes of centred points ``xc`` ``(N, n)``.

    Exact (an ``n x n`` eigen-decomposition) up to :data:`EXACT_PCA_DIM` columns; above,
    ``iterations`` steps of block power iteration started from the ``k`` largest rows
    (deterministic, ``O(N n k)`` each): only the ordering of the particles depends on it.
    """
    if xc.shape[1] <= EXACT_PCA_DIM:
        _, vecs = torch.linalg.eigh(xc.T @ xc)
        return vecs[:, -k:].flip(-1)
    start = xc[torch.argsort(xc.norm(dim=1), descending=True)[:k]].T  # (n, k)
    q, _ = torch.linalg.qr(start)
    for _ in range(iterations):
        q, _ = torch.linalg.qr(xc.T @ (xc @ q))
    return q


def rqmc_normals(
    states: torch.Tensor, dim: int, n_runs: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Standard normals ``(N, dim)`` for the moves, from scrambled Sobol points (SQMC).

    For each run (the ``N / n_runs`` consecutive rows of ``states``) an independent
    Owen-scrambled Sobol set of ``N / n_runs`` points in ``1 + dim`` dimensions (seeded from
    ``generator``) is sorted by its first coordinate, which is then dropped, and the points
    are given to the particles in the Hilbert order of ``states`` (:func:`hilbert_order`)
    and mapped through the normal quantile function.

    Parameters
    ----------
    states : torch.Tensor
        ``(N, ...)`` the states the particles move from (after resampling).
    dim : int
        Number of normals per particle.
    n_runs : int
        Independent runs stacked in the batch (each gets its own point set and order).
    generator : torch.Generator, optional
        Source of the scrambling seeds.

    Returns
    -------
    torch.Tensor
        ``(N, dim)`` float64 on ``states``' device.  Columns beyond Sobol's
        :data:`SOBOL_MAX_DIM` ``- 1`` are independent normals from ``generator``.
    """
    n_all = states.shape[0]
    if n_all % n_runs:
        raise ValueError(f"n_runs: {n_runs} does not divide the {n_all} particles")
    n = n_all // n_runs
    out = torch.empty((n_all, dim), dtype=torch.float64, device=states.device)
    dev = generator.device if generator is not None else torch.device("cpu")
    for k in range(n_runs):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=dev))
        qdim = min(dim, SOBOL_MAX_DIM - 1)
        engine = torch.quasirandom.SobolEngine(1 + qdim, scramble=True, seed=seed)
        pts = engine.draw(n, dtype=torch.float64)
        pts = pts[torch.sort(pts[:, 0], stable=True).indices, 1:]
        half = 0.5 / 2**30  # keep the quantiles finite
        normals = torch.special.ndtri(pts.clamp(half, 1.0 - half))
        if qdim < dim:  # beyond Sobol's dimensions: independent normals
            rest = torch.randn((n, dim - qdim), dtype=torch.float64, generator=generator,
                               device=dev)
            normals = torch.cat([normals, rest.cpu()], dim=1)
        normals = normals.to(states.device)
        order = hilbert_order(states[k * n:(k + 1) * n])
        block = torch.empty_like(normals)
        block[order] = normals
        out[k * n:(k + 1) * n] = block
    return out


def move_normals(
    kind: str, states: torch.Tensor, dims: tuple[int, ...], n_runs: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, ...]:
    """The standard normals of one move: ``(N, d)`` float64 for each ``d`` in ``dims``.

    ``kind="pseudo"``: independent draws from ``generator``, one tensor after the other;
    ``"rqmc"``: one :func:`rqmc_normals` set of ``sum(dims)`` columns, split.
    """
    n = states.shape[0]
    if kind == "rqmc":
        return torch.split(rqmc_normals(states, sum(dims), n_runs, generator), list(dims), 1)
    if kind != "pseudo":
        raise ValueError(f"noise: expected one of {list(NOISES)}, got {kind!r}")
    return tuple(torch.randn((n, d), dtype=torch.float64, device=states.device,
                             generator=generator) for d in dims)


def child_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """A generator on ``generator``'s device seeded by one draw from it (``None``: ``None``,
    the global generator): a separate stream, so that extra draws (the economy complement's
    noise, :meth:`~diffinv.solvers.smc.svd_likelihood.SVDLikelihood.image`) leave the
    parent's stream as it would be without them."""
    if generator is None:
        return None
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator(device=generator.device).manual_seed(seed)
