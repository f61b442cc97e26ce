"""Curvature of a log-likelihood: the step-size scale of Langevin/HMC/proximal data steps.

Solvers with gradient data steps (DAPS Langevin/HMC, PiGDM's and DiffPIR's nonlinear
fallbacks) need the largest eigenvalue ``L`` of the Hessian of ``-log p(y | x)``: a step
``~1/L`` is stable.  For linear-Gaussian problems ``L = ||A||^2 / sigma^2`` exactly; for any
other likelihood :func:`likelihood_curvature` estimates it at a reference image by power
iteration on Hessian-vector products (central finite differences of the autograd gradient,
so operators need only first derivatives).
"""

from __future__ import annotations

import torch

__all__ = ["estimate_curvature", "hessian_vector_products", "likelihood_curvature",
           "likelihood_hessian", "reference_image"]


def reference_image(
    prior, image_shape: tuple[int, ...], sigma_max: float, dtype: torch.dtype,
    device: torch.device | str,
) -> torch.Tensor:
    """The prior's mean image estimate ``D(0, sigma_max)``, shape ``(1, *image_shape)``."""
    zeros = torch.zeros((1, *image_shape), dtype=dtype, device=device)
    with torch.no_grad():
        return prior(zeros, torch.full((1,), float(sigma_max), dtype=dtype, device=device))


def likelihood_curvature(
    problem,
    x: torch.Tensor,
    iterations: int = 20,
    rel_step: float = 1e-3,
    generator: torch.Generator | None = None,
) -> float:
    """Largest absolute Hessian eigenvalue of ``-log p(y | x)`` at ``x`` (1/image units^2).

    Parameters
    ----------
    problem : InverseProblem
    x : torch.Tensor
        ``(1, *image_shape)`` point at which the curvature is estimated.
    iterations : int
        Power iterations (two gradient evaluations each).
    rel_step : float
        Finite-difference step relative to ``max(|x|)`` (at least ``rel_step``).
    generator : torch.Generator, optional
        Draws the starting direction.

    Returns
    -------
    float
        The estimate; 0 when the likelihood does not depend on ``x``.
    """
    if x.ndim < 1 or x.shape[0] != 1:
        raise ValueError(f"x: expected a single image of shape (1, ...), got {tuple(x.shape)}")
    x = x.detach()
    v = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    v = v / v.norm()
    eps = rel_step * max(float(x.abs().max()), 1.0)
    lam = 0.0
    for _ in range(iterations):
        g_plus = problem.grad_log_likelihood(x + eps * v)[1]
        g_minus = problem.grad_log_likelihood(x - eps * v)[1]
        hv = -(g_plus - g_minus) / (2 * eps)
        norm = float(hv.norm())
        if not torch.isfinite(hv).all():
            raise FloatingPointError("likelihood curvature: the gradient became NaN or Inf")
        if norm == 0.0:
            return 0.0
        lam = norm
        v = hv / norm
    return lam


def estimate_curvature(
    problem, prior, image_shape: tuple[int, ...], sigmas: torch.Tensor, dtype: torch.dtype
) -> float:
    """Default ``lipschitz`` of the gradient-step solvers: the curvature at the prior mean.

    Evaluated at :func:`reference_image` with a fixed-seed direction, so it neither depends
    on nor consumes the sampler's random stream.
    """
    device = problem.y.device
    x = reference_image(prior, image_shape, float(sigmas[0]), dtype, device)
    g = torch.Generator(device=device).manual_seed(0)
    return likelihood_curvature(problem, x, generator=g)


def hessian_vector_products(
    problem, x: torch.Tensor, v: torch.Tensor, eps: float, max_batch: int = 64
) -> torch.Tensor:
    """``H v_j`` for the columns of ``v`` ``(n, k)``, ``H`` the Hessian of ``-log p(y | x)``
    at ``x`` ``(1, *image_shape)``, by central differences of the gradient with step ``eps``
    along each (unit) column; gradients in batches of ``max_batch`` images.  Returns
    ``(n, k)`` float64."""
    shape = x.shape[1:]
    out = []
    for j in range(0, v.shape[1], max_batch):
        cols = v[:, j:j + max_batch].T.to(x.dtype).reshape(-1, *shape)
        batch = torch.cat([x + eps * cols, x - eps * cols])
        g = problem.grad_log_likelihood(batch)[1].reshape(batch.shape[0], -1)
        half = cols.shape[0]
        hv = -(g[:half] - g[half:]).to(torch.float64) / (2 * eps)
        if not torch.isfinite(hv).all():
            raise FloatingPointError("likelihood Hessian: the gradient became NaN or Inf")
        out.append(hv.T)
    return torch.cat(out, 1)


def likelihood_hessian(
    problem,
    x: torch.Tensor,
    rank: int,
    rel_step: float = 1e-4,
    generator: torch.Generator | None = None,
    max_batch: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Leading eigenpairs of the Hessian of ``-log p(y | x)`` at ``x``, positive part.

    A randomised range finder and Rayleigh-Ritz step (Halko, Martinsson & Tropp 2011,
    "Finding structure with randomness", algorithms 4.1 and 5.3) on Hessian-vector products
    by central differences of the autograd gradient (:func:`hessian_vector_products`):
    ``Y = H Omega`` for ``rank`` Gaussian directions, ``Q = qr(Y)``, the eigenpairs of
    ``Q^T H Q``.  Exact (to the finite differences) when the Hessian's rank is at most
    ``rank``, e.g. a Gauss-Newton Hessian ``J^T W J`` with at most ``rank`` data values.
    Costs ``4 rank`` gradient evaluations of the likelihood (no denoiser calls).

    Parameters
    ----------
    problem : InverseProblem
    x : torch.Tensor
        ``(1, *image_shape)`` point of the expansion.
    rank : int
        Directions probed (positive; at most the number of unknowns ``n``).
    rel_step : float
        Finite-difference step relative to ``||x||_2`` (``rel_step`` itself at ``x = 0``).
    generator : torch.Generator, optional
        Draws the probe directions.
    max_batch : int
        Images per gradient call.

    Returns
    -------
    (W, lam) : tuple of torch.Tensor
        ``W`` ``(n, rank)`` float64 with orthonormal columns and ``lam`` ``(rank,)`` float64
        >= 0 (negative curvature clipped to zero), ``H ~ W diag(lam) W^T``, in 1/image
        units^2, descending.
    """
    if x.ndim < 1 or x.shape[0] != 1:
        raise ValueError(f"x: expected a single image of shape (1, ...), got {tuple(x.shape)}")
    n = x[0].numel()
    if not 0 < rank <= n:
        raise ValueError(f"rank: expected an integer in [1, {n}] (the unknowns), got {rank}")
    x = x.detach()
    norm = float(x.to(torch.float64).norm())
    eps = rel_step * (norm if norm > 0.0 else 1.0)
    omega = torch.randn((n, rank), dtype=torch.float64, device=x.device, generator=generator)
    q, _ = torch.linalg.qr(omega)
    y = hessian_vector_products(problem, x, q, eps, max_batch)
    q, _ = torch.linalg.qr(y)
    hq = hessian_vector_products(problem, x, q, eps, max_batch)
    b = q.T @ hq
    lam, u = torch.linalg.eigh(0.5 * (b + b.T))
    order = torch.argsort(lam, descending=True)
    return q @ u[:, order], lam[order].clamp(min=0.0)
