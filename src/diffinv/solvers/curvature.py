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

__all__ = ["estimate_curvature", "likelihood_curvature", "reference_image"]


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
