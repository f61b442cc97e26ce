r"""Decoupled Annealing Posterior Sampling (Zhang, Chu, Berner, Meng, Anandkumar & Song 2024,
"Improving Diffusion Inverse Problem Solving with Decoupled Noise Annealing", arXiv:2407.01521).

DAPS anneals over the noise levels ``sigma_0 > sigma_1 > ... > 0``.  At level ``sigma_i``:

1. **ODE estimate** ``x0_hat``: ``ode_steps`` Euler steps of the probability-flow ODE
   ``dx/dsigma = (x - D(x, sigma)) / sigma`` from ``x_t`` at ``sigma_i`` down to ``0`` (with
   ``ode_steps=1`` this is Tweedie's ``D(x_t, sigma_i)``);
2. **data step** in ``x0`` space: a draw from

   .. math:: \pi(x_0) \propto p(y \mid x_0)\,
             \exp\!\big(-\|x_0 - \hat x_0\|^2 / (2 r_i^2)\big),\qquad r_i = r_{scale}\,\sigma_i,

   exactly (perturbation-optimisation with conjugate gradients, see
   :mod:`diffinv.solvers.gaussian_data`) for linear operators with Gaussian noise, or by
   ``langevin_steps`` unadjusted Langevin steps for any differentiable likelihood
   (phase retrieval, closure quantities), or as many Hamiltonian Monte Carlo transitions
   (``data_step="hmc"``: ``hmc_leapfrog`` leapfrog steps and a Metropolis correction, so the
   level's target is left exactly invariant; Neal 2011, "MCMC using Hamiltonian dynamics");
3. **re-noise** ``x_{t_{i+1}} = x_0 + sigma_{i+1} eps``.

The last level's ``x_0`` is returned.  DAPS is approximate: ``p(x0 | x_t)`` is replaced by the
isotropic Gaussian ``N(x0_hat, r_t^2 I)`` (for a prior ``N(m, C)`` the truth is
``N(D(x_t), sigma^2 C (C + sigma^2 I)^-1)``).  Even with the exact data step the samples are
biased; the bias decays roughly as ``1 / steps`` (figures in ``benchmarks/README.md``,
"Solver accuracy").  ``ode_steps=1`` (Tweedie)
is the less biased choice for exact denoisers; the paper's ODE estimate (``ode_steps`` about
5) gives sharper ``x0_hat`` with learned denoisers.  Langevin adds the usual unadjusted (ULA)
step-size bias.

Step size of Langevin: ``eta_i = langevin_lr / (1 / r_i^2 + L)``, where ``L`` bounds the
curvature of ``-log p(y | x0)`` (option ``lipschitz``; estimated by power iteration on
``A^T W A`` for linear-Gaussian problems, otherwise at the prior mean image by
:func:`diffinv.solvers.curvature.estimate_curvature`).  With ``langevin_lr < 2`` the
quadratic case is always stable.  For strongly curved nonlinear likelihoods pass ``lipschitz``
(or lower ``langevin_lr``); a NaN/Inf state raises ``FloatingPointError`` with the step.
HMC uses the leapfrog step ``sqrt(2 eta_i)`` (one leapfrog step is then MALA with step
``eta_i``), stable for ``langevin_lr < 2`` in the quadratic case.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..operators.problem import InverseProblem
from ..validation import in_range, one_of, positive_float, positive_int
from .batching import check_max_batch, run_chunked
from .context import Denoiser, RunContext
from .curvature import estimate_curvature
from .gaussian_data import LinearGaussianData
from .kernels import ode_x0
from .options import check_data_step_options
from .registry import SolverOutput, check_state, register_solver

__all__ = ["daps"]


@register_solver("daps")
def daps(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    ode_steps: int = 5,
    data_step: str = "auto",
    langevin_steps: int = 50,
    langevin_lr: float = 0.5,
    hmc_leapfrog: int = 5,
    lipschitz: float | None = None,
    r_scale: float = 1.0,
    cg_tol: float | None = None,
    cg_max_iter: int = 200,
    max_batch: int | None = None,
) -> SolverOutput:
    """Run DAPS chains.

    Parameters
    ----------
    ode_steps : int
        Euler steps of the probability-flow ODE per level (denoiser calls per level).
    data_step : {"auto", "gaussian", "langevin", "hmc"}
        ``gaussian``: exact conditional draw (linear operator + Gaussian noise only);
        ``langevin``: unadjusted Langevin with autograd gradients (any differentiable
        likelihood); ``hmc``: Metropolis-adjusted Hamiltonian Monte Carlo (any differentiable
        likelihood, no step-size bias); ``auto`` picks ``gaussian`` when
        ``problem.is_linear_gaussian``, else ``langevin``.
    langevin_steps : int
        Langevin iterations (or HMC transitions) per level.
    langevin_lr : float
        Step size as a fraction of ``1 / (1/r^2 + L)`` (see module docstring), in (0, 2).
    hmc_leapfrog : int
        Leapfrog steps per HMC transition.
    lipschitz : float, optional
        Curvature bound ``L`` of ``-log p(y|x0)`` (units: 1 / image units^2); default
        estimated (see the module docstring).
    r_scale : float
        ``r_t = r_scale * sigma_t``, the standard deviation of the Gaussian approximation
        of ``p(x0 | x_t)``.
    cg_tol, cg_max_iter : float, int
        Conjugate-gradient tolerance (default 1e-10 in float64, 1e-5 else) and cap.
    max_batch : int, optional
        Run chains in chunks of at most this many (bounds peak memory).
    """
    one_of("data_step", data_step, ("auto", "gaussian", "langevin", "hmc"))
    positive_int("hmc_leapfrog", hmc_leapfrog)
    positive_int("ode_steps", ode_steps)
    positive_int("langevin_steps", langevin_steps)
    in_range("langevin_lr", langevin_lr, 0.0, 2.0, low_open=True, high_open=True)
    positive_float("r_scale", r_scale)
    check_data_step_options(lipschitz, cg_tol, cg_max_iter)
    check_max_batch(max_batch)

    mode = data_step
    if mode == "auto":
        mode = "gaussian" if problem.is_linear_gaussian else "langevin"
    data = None
    if mode == "gaussian" or (problem.is_linear_gaussian and lipschitz is None):
        data = LinearGaussianData(problem, ctx.dtype, cg_tol=cg_tol, cg_max_iter=cg_max_iter)
    curvature = 0.0
    if mode in ("langevin", "hmc"):
        if lipschitz is not None:
            curvature = float(lipschitz)
        elif data is not None:
            curvature = data.lipschitz(ctx.image_shape, generator=ctx.generator)
        else:
            curvature = estimate_curvature(problem, prior, ctx.image_shape, ctx.sigmas,
                                           ctx.dtype)
    steps = DataStep(problem, mode, data, langevin_steps, langevin_lr, curvature, hmc_leapfrog)
    out = run_chunked(lambda c: _daps_chunk(problem, prior, c, steps, ode_steps, r_scale), ctx,
                      max_batch)
    out.diagnostics["data_step"] = mode
    if data is not None and mode == "gaussian":
        out.diagnostics["max_cg_iterations"] = data.max_iterations
        out.diagnostics["max_cg_residual"] = data.max_residual
    if mode in ("langevin", "hmc"):
        out.diagnostics["lipschitz"] = curvature
    if mode == "hmc" and out.diagnostics.get("hmc_acceptance", 1.0) < 0.2:
        warnings.warn(
            f"DAPS HMC acceptance rate {out.diagnostics['hmc_acceptance']:.2f} is low; lower "
            "langevin_lr or pass a larger lipschitz",
            RuntimeWarning,
            stacklevel=2,
        )
    return out


@dataclass(frozen=True)
class DataStep:
    """How DAPS draws ``x0`` given the ODE estimate ``x0_hat`` at one annealing level.

    ``mode`` is ``gaussian`` (exact conditional draw through ``data``), ``langevin`` or
    ``hmc`` (``n_steps`` iterations or transitions of step fraction ``lr`` with curvature bound
    ``curvature``; ``n_leapfrog`` leapfrog steps per HMC transition).
    """

    problem: InverseProblem
    mode: str
    data: LinearGaussianData | None
    n_steps: int
    lr: float
    curvature: float
    n_leapfrog: int

    def __call__(
        self, x0_hat: torch.Tensor, r: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, float | None]:
        """Draw ``x0`` from the data-consistent conditional at Gaussian width ``r``; return
        it and the HMC acceptance rate (``None`` for the other modes)."""
        if self.mode == "gaussian":
            return self.data.conditional_sample(x0_hat, r, generator), None
        if self.mode == "hmc":
            return _hmc(self.problem, x0_hat, r, self.n_steps, self.n_leapfrog, self.lr,
                        self.curvature, generator)
        return _langevin(self.problem, x0_hat, r, self.n_steps, self.lr, self.curvature,
                         generator), None


def _daps_chunk(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    data_step: DataStep,
    ode_steps: int,
    r_scale: float,
) -> SolverOutput:
    x = ctx.initial_noise()
    x0 = x
    acceptance = []
    for i, s, s_next in ctx.levels("daps"):
        x0_hat = ode_x0(prior, x, s, ode_steps)
        check_state(x0_hat, i, "DAPS ODE estimate x0_hat")
        x0, acc = data_step(x0_hat, r_scale * s, ctx.generator)
        if acc is not None:
            acceptance.append(acc)
        check_state(x0, i, "DAPS x0 sample")
        if s_next > 0:
            noise = torch.randn(x0.shape, dtype=ctx.dtype, device=ctx.device,
                                generator=ctx.generator)
            x = x0 + s_next * noise
        else:
            x = x0
        check_state(x, i, "DAPS state")
        ctx.report(step=i, sigma=s, x=x, x0_hat=x0_hat, x0=x0)
    diagnostics = {}
    if acceptance:
        diagnostics["hmc_acceptance_per_step"] = acceptance
        diagnostics["hmc_acceptance"] = sum(acceptance) / len(acceptance)
    return SolverOutput(samples=x0.detach(), nfe=ctx.steps * ode_steps, diagnostics=diagnostics)


def _langevin(problem, x0_hat, r, n_steps, lr, curvature, generator) -> torch.Tensor:
    """Unadjusted Langevin on ``log p(y|x0) - ||x0 - x0_hat||^2 / (2 r^2)``."""
    eta = lr / (1.0 / r**2 + curvature)
    noise_scale = math.sqrt(2.0 * eta)
    x0 = x0_hat.detach().clone()
    for _ in range(n_steps):
        _, grad_ll = problem.grad_log_likelihood(x0)
        grad = grad_ll.to(x0.dtype) - (x0 - x0_hat) / r**2
        noise = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=generator)
        x0 = x0 + eta * grad + noise_scale * noise
    return x0


def _hmc(problem, x0_hat, r, n_transitions, n_leapfrog, lr, curvature, generator):
    """Metropolis-adjusted HMC on ``log p(y|x0) - ||x0 - x0_hat||^2 / (2 r^2)``.

    Returns the final states and the mean acceptance rate over chains and transitions.
    """
    eps = math.sqrt(2.0 * lr / (1.0 / r**2 + curvature))
    shape = (-1,) + (1,) * (x0_hat.ndim - 1)

    def log_target_and_grad(x):
        ll, g = problem.grad_log_likelihood(x)
        diff = x - x0_hat
        prior_term = (diff**2).reshape(x.shape[0], -1).sum(1) / (2 * r**2)
        return ll.to(x.dtype) - prior_term, g.to(x.dtype) - diff / r**2

    x = x0_hat.detach().clone()
    logp, grad = log_target_and_grad(x)
    accepted = 0.0
    for _ in range(n_transitions):
        p = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        h0 = -logp + 0.5 * (p**2).reshape(x.shape[0], -1).sum(1)
        xn, pn, gn = x, p + 0.5 * eps * grad, grad
        for k in range(n_leapfrog):
            xn = xn + eps * pn
            logpn, gn = log_target_and_grad(xn)
            pn = pn + (eps if k < n_leapfrog - 1 else 0.5 * eps) * gn
        h1 = -logpn + 0.5 * (pn**2).reshape(x.shape[0], -1).sum(1)
        log_u = torch.log(torch.rand(x.shape[0], dtype=x.dtype, device=x.device,
                                     generator=generator))
        accept = torch.isfinite(h1) & (log_u < (h0 - h1))
        x = torch.where(accept.reshape(shape), xn, x)
        logp = torch.where(accept, logpn, logp)
        grad = torch.where(accept.reshape(shape), gn, grad)
        accepted += float(accept.to(torch.float64).mean())
    return x, accepted / n_transitions
