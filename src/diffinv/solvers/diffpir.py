r"""DiffPIR: denoising diffusion models for plug-and-play image restoration (Zhu, Zhang, Liang,
Cao, Wen, Timofte & Van Gool, CVPR Workshops 2023, arXiv:2305.08995).

Half-quadratic splitting inside the reverse diffusion.  At noise level ``sigma_t``:

1. prior step: ``x0_hat = D(x_t, sigma_t)``;
2. data-proximal step (eq. 13 of the paper, written for a general noise model)

   .. math:: \tilde x_0 = \arg\min_x\; -\log p(y \mid x)
             + \frac{\lambda}{2 \sigma_t^2} \|x - \hat x_0\|^2,

   i.e. ``rho_t = lambda sigma_y^2 / sigma_t^2`` of the paper for Gaussian noise.  Solved in
   closed form by conjugate gradients on ``(A^T W A + lambda / sigma_t^2 I)`` for linear
   operators with Gaussian noise, otherwise by ``prox_steps`` gradient steps (autograd);
3. re-noise with the effective noise ``eps_hat = (x_t - x0_tilde) / sigma_t``:

   .. math:: x_{t-1} = \tilde x_0 + \sigma_{t-1}\big(\sqrt{1-\zeta}\,\hat\epsilon
             + \sqrt{\zeta}\,\epsilon\big).

The paper's image-restoration defaults are ``lambda`` of order 1-10 and ``zeta`` 0.3-1; here
``lam = 1`` and ``zeta = 1`` (fresh noise every step).  DiffPIR computes a MAP-type point per
level, not a posterior draw; it is approximate and its spread is not guaranteed calibrated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..operators.problem import InverseProblem
from ..validation import in_range, positive_float, positive_int
from .batching import check_max_batch, run_chunked
from .context import Denoiser, RunContext
from .curvature import estimate_curvature
from .gaussian_data import LinearGaussianData
from .options import check_data_step_options
from .registry import SolverOutput, check_state, register_solver

__all__ = ["diffpir"]


@register_solver("diffpir")
def diffpir(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    lam: float = 1.0,
    zeta: float = 1.0,
    prox_steps: int = 20,
    prox_lr: float = 0.5,
    lipschitz: float | None = None,
    cg_tol: float | None = None,
    cg_max_iter: int = 100,
    max_batch: int | None = None,
) -> SolverOutput:
    """Run DiffPIR chains.

    Parameters
    ----------
    lam : float
        Regularisation weight ``lambda`` of the proximal step (larger trusts the prior more).
    zeta : float
        Fraction of fresh noise in [0, 1] when re-noising.
    prox_steps : int
        Gradient steps of the proximal problem for non-linear-Gaussian problems.
    prox_lr : float
        Gradient step as a fraction of ``1 / (lambda / sigma_t^2 + L)``, in (0, 2).
    lipschitz : float, optional
        Curvature bound ``L`` of ``-log p(y|x)`` for the gradient steps; default estimated
        at the prior mean image (:func:`diffinv.solvers.curvature.estimate_curvature`).
    cg_tol, cg_max_iter : float, int
        Conjugate-gradient tolerance (default 1e-10 in float64, 1e-5 else) and cap.
    max_batch : int, optional
        Run chains in chunks of at most this many (bounds peak memory).
    """
    positive_float("lam", lam)
    in_range("zeta", zeta, 0.0, 1.0)
    positive_int("prox_steps", prox_steps)
    in_range("prox_lr", prox_lr, 0.0, 2.0, low_open=True, high_open=True)
    check_data_step_options(lipschitz, cg_tol, cg_max_iter)
    check_max_batch(max_batch)
    data = None
    if problem.is_linear_gaussian:
        data = LinearGaussianData(problem, ctx.dtype, cg_tol=cg_tol, cg_max_iter=cg_max_iter)
    curvature = float(lipschitz) if lipschitz is not None else 0.0
    if data is None and lipschitz is None:
        curvature = estimate_curvature(problem, prior, ctx.image_shape, ctx.sigmas, ctx.dtype)
    prox = Proximal(problem, data, float(lam), prox_steps, float(prox_lr), curvature)
    out = run_chunked(lambda c: _diffpir_chunk(prior, c, prox, float(zeta)), ctx, max_batch)
    out.diagnostics["data_step"] = "closed_form" if data is not None else "gradient"
    if data is not None:
        out.diagnostics["max_cg_iterations"] = data.max_iterations
        out.diagnostics["max_cg_residual"] = data.max_residual
    return out


@dataclass(frozen=True)
class Proximal:
    """DiffPIR's data proximal step at precision ``lam / sigma^2``: closed form through
    ``data`` when the problem is linear-Gaussian, else ``n_steps`` gradient steps of fraction
    ``lr`` with curvature bound ``curvature``."""

    problem: InverseProblem
    data: LinearGaussianData | None
    lam: float
    n_steps: int
    lr: float
    curvature: float

    def __call__(self, x0_hat: torch.Tensor, sigma: float) -> torch.Tensor:
        """The proximal point of ``-log p(y|x)`` around ``x0_hat`` at noise level ``sigma``."""
        prec = self.lam / sigma**2
        if self.data is not None:
            return self.data.conditional_mean(x0_hat, 1.0 / math.sqrt(prec))
        return _prox_gradient(self.problem, x0_hat, prec, self.n_steps, self.lr, self.curvature)


def _diffpir_chunk(prior: Denoiser, ctx: RunContext, prox: Proximal, zeta: float) -> SolverOutput:
    x = ctx.initial_noise()
    x0 = x
    for i, s, s_next in ctx.levels("diffpir"):
        with torch.no_grad():
            x0_hat = prior(x, ctx.sigma_batch(s))
        check_state(x0_hat, i, "DiffPIR denoised x0_hat")
        x0 = prox(x0_hat, s)
        check_state(x0, i, "DiffPIR proximal x0")
        if s_next > 0:
            eps_hat = (x - x0) / s
            noise = torch.randn(x.shape, dtype=ctx.dtype, device=ctx.device,
                                generator=ctx.generator)
            x = x0 + s_next * (math.sqrt(1.0 - zeta) * eps_hat + math.sqrt(zeta) * noise)
        else:
            x = x0
        check_state(x, i, "DiffPIR state")
        ctx.report(step=i, sigma=s, x=x, x0_hat=x0_hat, x0=x0)
    return SolverOutput(samples=x0.detach(), nfe=ctx.steps)


def _prox_gradient(problem, x0_hat, prec, n_steps, lr, curvature) -> torch.Tensor:
    """Gradient descent on ``-log p(y|x) + prec/2 ||x - x0_hat||^2`` from ``x0_hat``."""
    step = lr / (prec + curvature)
    x = x0_hat.detach().clone()
    for _ in range(n_steps):
        _, grad_ll = problem.grad_log_likelihood(x)
        x = x + step * (grad_ll.to(x.dtype) - prec * (x - x0_hat))
    return x
