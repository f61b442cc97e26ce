"""Diffusion Posterior Sampling (Chung, Kim, Mccann, Klasky & Ye, ICLR 2023).

At each noise level the Tweedie estimate ``x0_hat = D(x_t, sigma_t)`` is computed with
gradients, the data term is differentiated *through the denoiser* with respect to ``x_t``,
and the gradient is added to an unconditional ancestral (Euler-Maruyama) step of the
variance-exploding reverse SDE.

Two step rules:

* ``guidance="paper"`` (Algorithm 1 of the paper): ``x <- x' - zeta_i grad ||y - A(x0_hat)||^2``
  with ``zeta_i = zeta / ||y - A(x0_hat)||`` per chain, i.e. ``x' - 2 zeta grad ||r||``
  (the official code's ``scale`` equals ``2 * zeta``).  ``||.||`` is the noise model's
  residual norm (unweighted for Gaussian noise; the paper's Lambda weighting for Poisson).
  The step is taken in the variance-exploding state ``x_t = x_0 + sigma_t eps``.  The paper
  works in the variance-preserving state ``x_VP = x_t / sqrt(1 + sigma_t^2)``; its step carried
  over literally would be ``(1 + sigma_t^2)`` times larger here, so the same ``zeta`` guides
  far less at high noise than in the official code and the same at low noise (where
  ``sigma_t << 1``, the steps that set the data fit).
* ``guidance="likelihood"``: the posterior score approximation taken literally,
  ``x <- x' + step_size (sigma_i^2 - sigma_{i+1}^2) grad log p(y | x0_hat(x))``.  With
  ``step_size=1`` this is the reverse SDE of the DPS-approximate posterior.

The ``paper`` step is limited, per chain, to the Polyak length ``||r|| / ||grad ||r||||``:
the step along the gradient that would bring the linearised residual norm to zero (Polyak,
"Introduction to Optimization", 1987, sec. 5.3), so a longer one can only overshoot.  It is
free of units and parameters; without it, problems whose data and image differ in scale by
orders of magnitude (photon counts against attenuation in 1/mm, likelihood curvature ~1e8;
VLBI visibilities; diffraction intensities) diverge at the default ``zeta``.  On problems
where the paper step is already short enough nothing changes.
``diagnostics["capped_steps"]`` counts the steps where some chain was limited.

DPS is an approximation: even for Gaussian priors and linear problems its samples are not
exact draws from the posterior (see the tests for the documented tolerance).
"""

from __future__ import annotations

import torch

from ..operators.problem import InverseProblem
from ..validation import in_range, nonnegative_float, one_of
from .context import Denoiser, RunContext
from .kernels import ancestral_step
from .registry import SolverOutput, check_state, register_solver

__all__ = ["dps"]


@register_solver("dps")
def dps(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    guidance: str = "paper",
    zeta: float = 1.0,
    step_size: float = 1.0,
    eta: float = 1.0,
) -> SolverOutput:
    """Run DPS chains.

    Parameters
    ----------
    guidance : {"paper", "likelihood"}
        Step rule, see the module docstring.
    zeta : float
        Step scale of the ``paper`` rule (the paper's zeta'; typical 0.1 to 1).
    step_size : float
        Multiplier of the ``likelihood`` rule (1 is the literal approximation).
    eta : float
        Ancestral noise fraction in [0, 1]: 1 is the DDPM-like SDE step, 0 the
        deterministic Euler step of the probability-flow ODE.
    """
    one_of("guidance", guidance, ("paper", "likelihood"))
    in_range("eta", eta, 0.0, 1.0)
    nonnegative_float("zeta", zeta)
    nonnegative_float("step_size", step_size)
    x = ctx.initial_noise()
    residual_norms = []
    capped = 0
    for i, s, s_next in ctx.levels("dps"):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x0 = prior(xg, ctx.sigma_batch(s))
            if guidance == "paper":
                norm = problem.residual_norm(x0)
                (grad,) = torch.autograd.grad(norm.sum(), xg)
                residual_norms.append(float(norm.detach().mean()))
            else:
                ll = problem.log_likelihood(x0)
                (grad,) = torch.autograd.grad(ll.sum(), xg)
        x0 = x0.detach()
        x = ancestral_step(x, x0, s, s_next, eta, ctx.generator)
        if guidance == "paper":
            move, limited = _polyak_limit(-2.0 * zeta * grad, norm.detach(), grad)
            capped += int(limited)
            x = x + move
        else:
            x = x + step_size * (s**2 - s_next**2) * grad
        check_state(x, i, "DPS state")
        ctx.report(step=i, sigma=s, x=x, x0_hat=x0)
    diagnostics = {"guidance": guidance, "capped_steps": capped}
    if residual_norms:
        diagnostics["residual_norm_per_step"] = residual_norms
    return SolverOutput(samples=x.detach(), nfe=ctx.steps, diagnostics=diagnostics)


def _polyak_limit(
    move: torch.Tensor, residual: torch.Tensor, grad: torch.Tensor
) -> tuple[torch.Tensor, bool]:
    """Scale each chain's ``move`` to a length of at most ``||r|| / ||grad ||r||||``.

    ``move``, ``grad``: ``(n, *image_shape)``; ``residual``: ``(n,)`` residual norms.
    Returns the limited move and whether any chain was limited.
    """
    n = move.shape[0]
    tiny = torch.finfo(grad.real.dtype).tiny
    max_norm = residual.to(grad.real.dtype) / grad.reshape(n, -1).norm(dim=1).clamp(min=tiny)
    length = move.reshape(n, -1).norm(dim=1)
    factor = torch.clamp(max_norm / length.clamp(min=tiny), max=1.0)
    limited = bool((factor < 1.0).any())
    shape = (-1,) + (1,) * (move.ndim - 1)
    return move * factor.reshape(shape).to(move.dtype), limited
