r"""Pseudoinverse-guided diffusion models, PiGDM (Song, Vahdat, Mardani & Kautz, ICLR 2023,
"Pseudoinverse-Guided Diffusion Models for Inverse Problems").

PiGDM approximates ``p(x0 | x_t)`` by ``N(x0_hat, r_t^2 I)`` with ``x0_hat = D(x_t, sigma_t)``
and ``r_t^2 = sigma_t^2 c / (sigma_t^2 + c)`` (the conditional variance for a prior of
variance ``c`` per pixel, option ``data_var``; ``c = 1`` is the paper's choice for data scaled
to unit variance).  For ``y = A x + n``, ``n ~ N(0, Sigma)`` this gives the likelihood score

.. math::
    \nabla_{x_t} \log p(y \mid x_t) \approx
    \Big(\frac{\partial \hat x_0}{\partial x_t}\Big)^T
    A^T (r_t^2 A A^T + \Sigma)^{-1} (y - A \hat x_0),

a vector-Jacobian product through the denoiser.  The matrix inverse is applied matrix-free:
``A^T (r^2 A A^T + Sigma)^{-1} = r^{-2} (A^T W A + I/r^2)^{-1} A^T W`` solved by conjugate
gradients (``W = Sigma^{-1}``; exact pseudoinverse structure for masks and unitary operators,
fast for any operator).  The guided posterior denoiser
``x0_post = x0_hat + sigma_t^2 * guidance_scale * score`` drives an ancestral (DDIM-style)
VE step with noise fraction ``eta``.

For nonlinear operators or non-Gaussian noise, the fallback uses the DPS-style score
``grad_{x_t} log p(y | x0_hat(x_t))`` damped by ``1 / (1 + r_t^2 L)``, with ``L`` (option
``lipschitz``) a bound on the curvature ``J^T W J`` of ``-log p(y|x)``: PiGDM's covariance
``(r_t^2 J J^T + Sigma)^{-1}`` with the Jacobian's spectrum replaced by its bound.  Without
``lipschitz`` it is estimated at the prior mean image
(:func:`diffinv.solvers.curvature.estimate_curvature`); ``lipschitz=0`` gives literal DPS,
which can diverge for informative data.

PiGDM is approximate.  For an isotropic Gaussian prior ``N(m, c I)`` with ``data_var = c`` the
Gaussian approximation is exact and only discretisation error remains; for other priors the
bias is that of the isotropic approximation (see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..operators.problem import InverseProblem
from ..validation import in_range, nonnegative_float, positive_float
from .batching import check_max_batch, run_chunked
from .context import Denoiser, RunContext
from .curvature import estimate_curvature
from .gaussian_data import LinearGaussianData
from .kernels import ancestral_step
from .options import check_data_step_options
from .registry import SolverOutput, check_state, register_solver

__all__ = ["pigdm"]


@register_solver("pigdm")
def pigdm(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    data_var: float = 1.0,
    guidance_scale: float = 1.0,
    eta: float = 1.0,
    lipschitz: float | None = None,
    cg_tol: float | None = None,
    cg_max_iter: int = 100,
    max_batch: int | None = None,
) -> SolverOutput:
    """Run PiGDM chains.

    Parameters
    ----------
    data_var : float
        Per-pixel prior variance ``c`` in ``r_t^2 = sigma_t^2 c / (sigma_t^2 + c)``
        (image units squared).
    guidance_scale : float
        Multiplier of the likelihood score (1 is the paper's approximation taken literally).
    eta : float
        Ancestral noise fraction in [0, 1] (1: stochastic DDPM-like, 0: deterministic DDIM).
    lipschitz : float, optional
        Curvature bound ``L`` of ``-log p(y|x)`` for the nonlinear fallback (image units^-2);
        default estimated at the prior mean image.
    cg_tol, cg_max_iter : float, int
        Conjugate-gradient tolerance (default 1e-10 in float64, 1e-5 else) and cap.
    max_batch : int, optional
        Run chains in chunks of at most this many (bounds peak memory).
    """
    positive_float("data_var", data_var)
    nonnegative_float("guidance_scale", guidance_scale)
    in_range("eta", eta, 0.0, 1.0)
    check_data_step_options(lipschitz, cg_tol, cg_max_iter)
    check_max_batch(max_batch)
    data = None
    if problem.is_linear_gaussian:
        data = LinearGaussianData(problem, ctx.dtype, cg_tol=cg_tol, cg_max_iter=cg_max_iter)
    curvature = float(lipschitz) if lipschitz is not None else 0.0
    if data is None and lipschitz is None:
        curvature = estimate_curvature(problem, prior, ctx.image_shape, ctx.sigmas, ctx.dtype)
    guide = Guidance(data, float(data_var), float(guidance_scale), float(eta), curvature)
    out = run_chunked(lambda c: _pigdm_chunk(problem, prior, c, guide), ctx, max_batch)
    out.diagnostics["guidance"] = "pseudoinverse" if data is not None else "dps_fallback"
    if data is not None:
        out.diagnostics["max_cg_iterations"] = data.max_iterations
        out.diagnostics["max_cg_residual"] = data.max_residual
    return out


@dataclass(frozen=True)
class Guidance:
    """PiGDM's guidance settings: the exact linear-Gaussian data term ``data`` (or ``None`` for
    the DPS-like fallback with curvature damping ``curvature``), the prior-variance
    ``data_var`` of ``p(x0 | x_t)``, the guidance ``scale`` and the ancestral ``eta``."""

    data: LinearGaussianData | None
    data_var: float
    scale: float
    eta: float
    curvature: float


def _pigdm_chunk(
    problem: InverseProblem, prior: Denoiser, ctx: RunContext, guide: Guidance
) -> SolverOutput:
    data, data_var, scale, eta, curvature = (guide.data, guide.data_var, guide.scale, guide.eta,
                                             guide.curvature)
    x = ctx.initial_noise()
    for i, s, s_next in ctx.levels("pigdm"):
        sig = ctx.sigma_batch(s)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x0 = prior(xg, sig)
            r2 = s**2 * data_var / (s**2 + data_var)
            if data is not None:
                with torch.no_grad():
                    resid = data.residual(x0.detach())
                    v = data.solve(data.weighted_adjoint(resid), 1.0 / r2) / r2
                (score,) = torch.autograd.grad(x0, xg, grad_outputs=v.to(x0.dtype))
            else:
                ll = problem.log_likelihood(x0)
                (score,) = torch.autograd.grad(ll.sum(), xg)
                score = score / (1.0 + r2 * curvature)
        x0 = x0.detach()
        x0_post = x0 + (s**2 * scale) * score
        check_state(x0_post, i, "PiGDM guided x0")
        x = ancestral_step(x, x0_post, s, s_next, eta, ctx.generator)
        check_state(x, i, "PiGDM state")
        ctx.report(step=i, sigma=s, x=x, x0_hat=x0)
    return SolverOutput(samples=x.detach(), nfe=ctx.steps)
