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

Adaptive steps (option ``target_acceptance``, on by default for HMC).  A curvature estimate
at the prior mean can be far from the curvature where the chains are (acceptance 0 at the
last levels of real EHT runs with fixed steps).  By default (``"auto"``) HMC steps adapt to
acceptance 0.65; unadjusted Langevin keeps its fixed fraction unless a target is given
(:data:`OPTIMAL_ACCEPTANCE`).  With a target, the fraction ``langevin_lr`` is only the
starting value of a dual-averaging adaptation (Hoffman & Gelman 2014;
:mod:`diffinv.solvers.step_adaptation`) driven by the mean acceptance of every transition,
restarted at each level from the previous level's averaged value (the level's target
changes with ``r_i``).  For HMC the acceptance is the Metropolis one; for Langevin, which
stays unadjusted, it is the acceptance probability the Metropolis-adjusted (MALA) step would
have, a measure of the step's discretisation error.  Adapting within a level makes its
transitions only approximately invariant (as DAPS itself is approximate).  The acceptance
per level is reported either way (``acceptance_per_step``) with the step fraction used
(``step_fraction_per_step``); a ``RuntimeWarning`` names the levels where the acceptance
stayed below :data:`ACCEPTANCE_FLOOR` for :data:`FLOOR_LEVELS` or more consecutive levels.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..operators.problem import InverseProblem
from ..validation import in_range, one_of, optional, positive_float, positive_int
from .batching import check_max_batch, run_chunked
from .context import Denoiser, RunContext
from .curvature import estimate_curvature
from .gaussian_data import LinearGaussianData
from .kernels import ode_x0
from .options import check_data_step_options
from .registry import SolverOutput, check_state, register_solver
from .step_adaptation import DualAveraging

__all__ = ["daps", "ACCEPTANCE_FLOOR", "FLOOR_LEVELS"]

ACCEPTANCE_FLOOR = 0.1  # warn when the per-level acceptance stays below this ...
FLOOR_LEVELS = 3  # ... for this many consecutive levels
#: The default ``target_acceptance`` per data step.  HMC: the optimal-scaling acceptance
#: (Beskos et al. 2013, Bernoulli 19(5A)); its Metropolis check removes the step's bias and
#: rejects the too-large steps the adaptation tries.  Langevin is unadjusted and keeps the
#: fixed fraction unless a target is given: adapting it trades bias for speed (covariance
#: error 6.7 at MALA's optimal 0.574, 0.54 at 0.9, 0.44 fixed, on the Gaussian check of
#: tests/solvers/test_daps.py), and the adaptation's large early trial steps made it diverge
#: on the nonlinear intensity check there.
OPTIMAL_ACCEPTANCE = {"hmc": 0.65}


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
    target_acceptance: float | str | None = "auto",
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
    target_acceptance : float, "auto" or None
        Langevin/HMC only: adapt the step fraction per level by dual averaging to this mean
        acceptance, in (0, 1) (module docstring).  ``"auto"`` (default): 0.65 for HMC
        (Beskos et al. 2013), fixed steps for the unadjusted Langevin step
        (:data:`OPTIMAL_ACCEPTANCE`; a target of about 0.9 suits it); ``None``: the fixed
        fraction ``langevin_lr``.
    """
    one_of("data_step", data_step, ("auto", "gaussian", "langevin", "hmc"))
    positive_int("hmc_leapfrog", hmc_leapfrog)
    positive_int("ode_steps", ode_steps)
    positive_int("langevin_steps", langevin_steps)
    in_range("langevin_lr", langevin_lr, 0.0, 2.0, low_open=True, high_open=True)
    positive_float("r_scale", r_scale)
    check_data_step_options(lipschitz, cg_tol, cg_max_iter)
    check_max_batch(max_batch)
    if target_acceptance != "auto":
        optional(in_range, "target_acceptance", target_acceptance, 0.0, 1.0, low_open=True,
                 high_open=True)

    mode = data_step
    if mode == "auto":
        mode = "gaussian" if problem.is_linear_gaussian else "langevin"
    if target_acceptance == "auto":
        target_acceptance = OPTIMAL_ACCEPTANCE.get(mode)
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
    steps = DataStep(problem, mode, data, langevin_steps, langevin_lr, curvature, hmc_leapfrog,
                     target_acceptance)
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
            "langevin_lr, pass a larger lipschitz, or set target_acceptance (the step "
            "adaptation)",
            RuntimeWarning,
            stacklevel=2,
        )
    if mode in ("langevin", "hmc"):
        _warn_below_floor(out.diagnostics["acceptance_per_step"], target_acceptance)
    return out


def _warn_below_floor(acceptance: list[float], target: float | None) -> None:
    """Warn naming the levels where the acceptance stayed below the floor (module notes)."""
    if target is None:
        advice = "the fixed step is too large there; set target_acceptance to adapt it"
    else:
        advice = (f"even with the step adapted towards acceptance {target}; the chains barely "
                  "move there and the spread is underestimated: raise langevin_steps")
    low, run = [], []
    for i, a in enumerate(acceptance):
        run = run + [i] if a < ACCEPTANCE_FLOOR else []
        if len(run) == FLOOR_LEVELS:
            low.extend(run)
        elif len(run) > FLOOR_LEVELS:
            low.append(i)
    if low:
        warnings.warn(
            f"DAPS data-step acceptance stayed below {ACCEPTANCE_FLOOR} at levels "
            f"{low[0]}-{low[-1]} ({len(low)} levels): " + advice,
            RuntimeWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class DataStep:
    """How DAPS draws ``x0`` given the ODE estimate ``x0_hat`` at one annealing level.

    ``mode`` is ``gaussian`` (exact conditional draw through ``data``), ``langevin`` or
    ``hmc`` (``n_steps`` iterations or transitions of step fraction ``lr`` with curvature bound
    ``curvature``; ``n_leapfrog`` leapfrog steps per HMC transition; ``target_acceptance``
    turns on the dual-averaging adaptation of the fraction).
    """

    problem: InverseProblem
    mode: str
    data: LinearGaussianData | None
    n_steps: int
    lr: float
    curvature: float
    n_leapfrog: int
    target_acceptance: float | None = None

    def adapter(self) -> DualAveraging | None:
        """A fresh step adaptation for one run of chains (``None`` without a target)."""
        if self.target_acceptance is None or self.mode == "gaussian":
            return None
        return DualAveraging(self.lr, self.target_acceptance)

    def __call__(
        self, x0_hat: torch.Tensor, r: float, generator: torch.Generator,
        adapt: DualAveraging | None = None,
    ) -> tuple[torch.Tensor, float | None]:
        """Draw ``x0`` from the data-consistent conditional at Gaussian width ``r``; return
        it and the mean acceptance (``None`` for the exact Gaussian step).  ``adapt``
        supplies (and learns) the step fraction of every transition."""
        if self.mode == "gaussian":
            return self.data.conditional_sample(x0_hat, r, generator), None
        steps = _StepFraction(self.lr, adapt)
        if self.mode == "hmc":
            return _hmc(self.problem, x0_hat, r, self.n_steps, self.n_leapfrog, steps,
                        self.curvature, generator)
        return _langevin(self.problem, x0_hat, r, self.n_steps, steps, self.curvature,
                         generator)


class _StepFraction:
    """The step fraction of each transition: fixed, or from a :class:`DualAveraging`."""

    def __init__(self, lr: float, adapt: DualAveraging | None):
        self.lr, self.adapt = lr, adapt

    def current(self) -> float:
        return self.lr if self.adapt is None else self.adapt.step

    def record(self, acceptance: float) -> None:
        if self.adapt is not None:
            self.adapt.update(acceptance)


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
    acceptance, fractions = [], []
    adapt = data_step.adapter()
    for i, s, s_next in ctx.levels("daps"):
        x0_hat = ode_x0(prior, x, s, ode_steps)
        check_state(x0_hat, i, "DAPS ODE estimate x0_hat")
        if adapt is not None and i > 0:
            adapt.restart()  # from the previous level's averaged fraction
        fractions.append(data_step.lr if adapt is None else adapt.step)
        x0, acc = data_step(x0_hat, r_scale * s, ctx.generator, adapt)
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
        diagnostics["acceptance_per_step"] = acceptance
        diagnostics["step_fraction_per_step"] = fractions
    if acceptance and data_step.mode == "hmc":
        diagnostics["hmc_acceptance_per_step"] = acceptance
        diagnostics["hmc_acceptance"] = sum(acceptance) / len(acceptance)
    return SolverOutput(samples=x0.detach(), nfe=ctx.steps * ode_steps, diagnostics=diagnostics)


def _langevin(problem, x0_hat, r, n_steps, steps: _StepFraction, curvature, generator):
    """Unadjusted Langevin on ``log p(y|x0) - ||x0 - x0_hat||^2 / (2 r^2)``.

    Returns the final states and the mean over steps of the acceptance probability a
    Metropolis-adjusted step would have had (the chains are never rejected).
    """
    log_target_and_grad = _conditional_target(problem, x0_hat, r)
    x0 = x0_hat.detach().clone()
    logp, grad = log_target_and_grad(x0)
    total = 0.0
    for _ in range(n_steps):
        eta = steps.current() / (1.0 / r**2 + curvature)
        noise = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=generator)
        x_new = x0 + eta * grad + math.sqrt(2.0 * eta) * noise
        logp_new, grad_new = log_target_and_grad(x_new)
        fwd = ((x_new - x0 - eta * grad) ** 2).reshape(x0.shape[0], -1).sum(1)
        bwd = ((x0 - x_new - eta * grad_new) ** 2).reshape(x0.shape[0], -1).sum(1)
        log_alpha = logp_new - logp + (fwd - bwd) / (4.0 * eta)
        alpha = torch.exp(torch.nan_to_num(log_alpha, nan=-torch.inf).clamp(max=0.0))
        acc = float(alpha.to(torch.float64).mean())
        steps.record(acc)
        total += acc
        x0, logp, grad = x_new, logp_new, grad_new
    return x0, total / n_steps


def _conditional_target(problem, x0_hat, r):
    """``x -> (log pi(x), grad log pi(x))`` per chain for the level's data-step target
    ``log p(y|x) - ||x - x0_hat||^2 / (2 r^2)``."""

    def log_target_and_grad(x):
        ll, g = problem.grad_log_likelihood(x)
        diff = x - x0_hat
        prior_term = (diff**2).reshape(x.shape[0], -1).sum(1) / (2 * r**2)
        return ll.to(x.dtype) - prior_term, g.to(x.dtype) - diff / r**2

    return log_target_and_grad


def _hmc(problem, x0_hat, r, n_transitions, n_leapfrog, steps: _StepFraction, curvature,
         generator):
    """Metropolis-adjusted HMC on ``log p(y|x0) - ||x0 - x0_hat||^2 / (2 r^2)``.

    Returns the final states and the mean acceptance rate over chains and transitions.
    """
    shape = (-1,) + (1,) * (x0_hat.ndim - 1)
    log_target_and_grad = _conditional_target(problem, x0_hat, r)
    x = x0_hat.detach().clone()
    logp, grad = log_target_and_grad(x)
    accepted = 0.0
    for _ in range(n_transitions):
        eps = math.sqrt(2.0 * steps.current() / (1.0 / r**2 + curvature))
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
        rate = float(accept.to(torch.float64).mean())
        steps.record(rate)
        accepted += rate
    return x, accepted / n_transitions
