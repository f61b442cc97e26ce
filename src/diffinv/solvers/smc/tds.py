r"""Twisted Diffusion Sampler (TDS): SMC for any differentiable likelihood.

After Wu, Trippe, Naesseth, Blei & Cunningham (NeurIPS 2023), "Practical and asymptotically
exact conditional sampling in diffusion models", written here for the VE (EDM) process.

Twisting functions (the DPS approximation of the noisy-data likelihood)

.. math:: \tilde p_k(y \mid x_k) = p\big(y \mid \hat x_0(x_k, \sigma_k)\big),

with ``\hat x_0 = D(x_k, sigma_k)`` the denoiser.  At ``sigma = 0`` the twist is the exact
likelihood, so the weighted particles target ``p_model(x_0) p(y | x_0)`` asymptotically in the
particle count.  With the model's backward kernel ``N(mu_k(x_k), v_k I)``
(:func:`~diffinv.solvers.kernels.reverse_kernel`) the proposal is

.. math:: q(x_{k+1} \mid x_k) = N\big(\mu_k + v_k \nabla_{x_k} \log \tilde p_k(y \mid x_k),\
          v_k I\big)

and the incremental weight

.. math:: w_{k+1} = \frac{N(x_{k+1}; \mu_k, v_k)\, \tilde p_{k+1}(y \mid x_{k+1})}
          {q(x_{k+1} \mid x_k)\, \tilde p_k(y \mid x_k)}.

Damped proposal.  The shift ``v_k grad`` is an explicit gradient step of size ``v_k`` on the
twist; where ``v_k`` exceeds ``2 / L`` (``L`` the curvature of ``-log p(y | x_0)``, e.g.
``||A||^2 / sigma_y^2``) it overshoots, and the particles diverge within a few steps on
sharp likelihoods (high-SNR MRI: every weight underflows by step 5).  The shift used here is
``c_k v_k grad`` with ``c_k = 1 / (1 + v_k L)``: the paper's where ``v_k L << 1``, a step of
``grad / L`` (Newton-like, stable) where the likelihood is sharp.  Any shift gives a valid
proposal; the weight uses the one taken
(``log N(x'; mu, v) - log N(x'; mu + delta, v) = -delta.(x' - mu) / v + |delta|^2 / (2 v)``),
so the sampler stays asymptotically exact.  ``L = 0`` is the paper's proposal.

Each step costs one denoiser call with a backward pass (the value and gradient of the twist
at the new particles).  The last step to ``sigma = 0`` is deterministic (``x_0 = \hat x_0``)
and has weight one, so the number of denoiser evaluations equals the number of steps.

Tempering, variance inflation and rejuvenation (options of the ``smc`` solver).  The twist
at level ``k`` is raised to the power ``e_k = lambda_k tau_k``:

* ``tau_k = 1 / (1 + kappa L sigma_k^2)`` (``twist_inflation = kappa``; one at the last
  level) inflates the twist's variance: for ``y = A x_0 + noise`` with ``x_0 | x_k`` spread
  by about ``r^2 = kappa sigma_k^2`` per pixel, ``p(y | x_k)`` has the noise variance
  ``sigma_y^2 + r^2 ||A||^2 <= sigma_y^2 (1 + L r^2)``, and scaling the log-likelihood by
  ``tau`` is that inflation (the covariance the DPS twist leaves out; Song, Vahdat, Mardani &
  Kautz 2023, "Pseudoinverse-guided diffusion models", for the same correction in a
  guidance term).
* ``lambda_k`` in [0, 1] is chosen per step by adaptive tempering
  (:mod:`diffinv.solvers.smc.tempering`): after each proposal, the largest exponent whose
  whole incremental weight keeps the conditional ESS at the fraction ``tempering`` of the
  particles (so ``lambda`` may also fall where the twist sharpens faster than the particles
  can follow; any positive twist is valid at intermediate levels).  If it is below one at the
  last level, tempering steps at that level (resample and MCMC moves when the ESS is low,
  then reweight by ``L^(lambda' - lambda)`` with the same rule) finish the path.
* After every resampling, MCMC moves (:mod:`diffinv.solvers.smc.rejuvenation`) that leave
  ``p_k(x) exp(e_k ell(D(x, sigma_k)))`` invariant restore the particles' diversity.

Every target in the sequence is a valid intermediate distribution and the last one is
``p_model(x_0) p(y | x_0)``, so the weights and the log-evidence stay consistent (the moves
add no weight; the exponents enter the incremental weights exactly).

Accuracy.  The twist ignores the spread of ``x_0`` given ``x_k``, so it is over-confident
when the likelihood is sharp compared with the prior at intermediate noise levels: the
weights then degenerate (the ESS-collapse warning fires) and many particles are needed
(figures in ``benchmarks/README.md``, "Solver accuracy").  For linear-Gaussian problems
prefer ``method="mcgdiff"``.
"""

from __future__ import annotations

import torch

from ...operators.problem import InverseProblem
from ..context import Denoiser, RunContext
from ..kernels import reverse_kernel
from ..registry import SolverOutput, check_state
from ..utils import initial_noise, progress_bar
from .particles import ParticleWeights, RunWeights
from .rejuvenation import Rejuvenation, TwistState, evaluate
from .tempering import next_exponent

__all__ = ["run_tds", "inflation_factor"]


def inflation_factor(sigma: float, curvature: float, inflation: float) -> float:
    r"""The twist's exponent ``tau = 1 / (1 + kappa L sigma^2)`` (module docstring).

    ``kappa = inflation`` (>= 0; 0 gives 1, the plain DPS twist), ``L = curvature``."""
    return 1.0 / (1.0 + inflation * curvature * sigma**2)


class _Exponents:
    """The twist's exponent ``e_k = lambda_k tau_k`` per level: ``tau`` from the variance
    inflation (one at the last level), ``lambda`` from adaptive tempering (always one when
    ``target`` is None)."""

    def __init__(self, sigmas: torch.Tensor, curvature: float, inflation: float,
                 target: float | None):
        self.sigmas = [float(s) for s in sigmas]
        self.curvature, self.inflation, self.target = curvature, inflation, target
        self.lam = 1.0 if target is None else 0.0
        self.path: list[float] = []

    def tau(self, i: int) -> float:
        if self.sigmas[i + 1] == 0.0:
            return 1.0  # the last level's twist is the likelihood of the output
        return inflation_factor(self.sigmas[i], self.curvature, self.inflation)

    def advance(self, weights, base: torch.Tensor, ell: torch.Tensor, scale: float,
                low: float = 0.0, force: bool = False) -> float:
        """Choose the next ``lambda`` in ``[low, 1]`` for the increment
        ``base + lambda * scale * ell`` by the CESS rule (one with ``force``, or without
        tempering); return and record it."""
        if self.target is not None:
            if force:
                self.lam = 1.0
            else:
                self.lam = next_exponent(weights.run_log_weights, ell, self.target,
                                         base=base, low=low, scale=scale)
        self.path.append(self.lam)
        return self.lam


def run_tds(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    weights: ParticleWeights | RunWeights,
    max_batch: int | None,
    kernel: str = "midpoint",
    curvature: float = 0.0,
    tempering: float | None = None,
    inflation: float = 0.0,
    mover: Rejuvenation | None = None,
    max_tempering_steps: int = 50,
) -> SolverOutput:
    """Run the twisted diffusion sampler (see the module docstring).

    ``curvature`` is ``L`` of the damped proposal (1/image units^2; 0: undamped);
    ``tempering`` the CESS fraction of each tempering increment (``None``: no tempering);
    ``inflation`` the twist's ``kappa``; ``mover`` the MCMC moves after each resampling
    (``None``: none); ``max_tempering_steps`` bounds the tempering steps at the last level
    (the last one jumps to ``lambda = 1``).

    Returns
    -------
    SolverOutput
        ``samples`` ``(n_samples, *image_shape)``, float64 normalised ``weights``
        ``(n_samples,)``, ``nfe`` (denoiser calls per particle: one per step plus one per
        MCMC sweep) and the particle diagnostics.
    """
    sigmas, n_samples, image_shape = ctx.sigmas, ctx.n_samples, ctx.image_shape
    dtype, generator, callback = ctx.dtype, ctx.generator, ctx.callback
    device = problem.y.device
    steps = len(sigmas) - 1
    s0 = float(sigmas[0])
    exps = _Exponents(sigmas, curvature, inflation, tempering)
    x = initial_noise(n_samples, image_shape, s0, dtype, device, generator)
    st = evaluate(prior, problem.log_likelihood, x, s0, max_batch)
    check_state(st.grad, 0, "SMC (tds) twist gradient")
    # initial weights: the twist itself (the prior is sampled exactly)
    tau = exps.tau(0)
    e = exps.advance(weights, torch.zeros_like(st.ell), st.ell, tau) * tau
    weights.reweight(e * st.ell, 0)
    extra = 0
    for i in progress_bar(range(steps), ctx.progress, "smc-tds"):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        if s_next == 0.0:  # last step: x0 = D(x, sigma_min); the twist equals the likelihood
            st, extra = _finish_tempering(st, exps, weights, mover, s, i, max_tempering_steps)
            x = st.x0
            if callback is not None:
                callback({"step": i, "sigma": s, "x": x, "x0_hat": st.x0,
                          "ess": weights.ess_history[-1]})
            break
        st = _resample_move(st, weights, mover, s, e, i)
        mean, var = reverse_kernel(st.x, st.x0, s, s_next, kernel)
        noise = torch.randn(st.x.shape, dtype=dtype, device=device, generator=generator)
        damp = 1.0 / (1.0 + var * e * curvature)
        x_new = mean + (damp * var * e) * st.grad + var**0.5 * noise
        check_state(x_new, i, "SMC (tds) state")
        # log N(x'; mu, v) - log N(x'; mu + c v g, v) = -c g.(x' - mu) + c^2 v |g|^2 / 2,
        # with the twist gradient g at x_k
        g = (e * st.grad).reshape(n_samples, -1).to(torch.float64)
        d = (x_new - mean).reshape(n_samples, -1).to(torch.float64)
        log_ratio = -damp * (g * d).sum(1) + 0.5 * damp**2 * var * (g**2).sum(1)
        new = evaluate(prior, problem.log_likelihood, x_new, s_next, max_batch)
        check_state(new.grad, i + 1, "SMC (tds) twist gradient")
        tau = exps.tau(i + 1)
        e_next = exps.advance(weights, log_ratio - e * st.ell, new.ell, tau) * tau
        weights.reweight(log_ratio + e_next * new.ell - e * st.ell, i + 1)
        st, e = new, e_next
        if callback is not None:
            callback({"step": i, "sigma": s, "x": st.x, "x0_hat": st.x0,
                      "ess": weights.ess_history[-1]})
    diagnostics = {"method": "tds", "curvature": float(curvature), **weights.diagnostics()}
    nfe = steps
    if tempering is not None or inflation > 0.0:
        diagnostics.update(tempering_path=list(exps.path), tempering_steps=extra,
                           twist_inflation=float(inflation))
    if mover is not None:
        diagnostics.update(mover.diagnostics())
        nfe += mover.evaluations
    return SolverOutput(samples=x.detach(), nfe=nfe, weights=weights.weights,
                        diagnostics=diagnostics)


def _resample_move(st: TwistState, weights, mover: Rejuvenation | None, sigma: float,
                   exponent: float, step: int) -> TwistState:
    """Resample when the ESS is low; after a resampling, MCMC moves (if any) at ``sigma``."""
    idx = weights.maybe_resample(step, st.x)
    st = st.gather(idx)
    if idx is not None and mover is not None:
        st = mover.move(st, sigma, exponent)
        check_state(st.x, step, "SMC (tds) rejuvenated state")
    return st


def _finish_tempering(st: TwistState, exps: _Exponents, weights, mover: Rejuvenation | None,
                      sigma: float, step: int, max_steps: int) -> tuple[TwistState, int]:
    """Temper from the current ``lambda`` to one at the last level ``sigma``: resample and
    move when the ESS is low, then reweight by the CESS rule, at most ``max_steps`` times
    (the last jumps to one; without moves, one jump: successive reweightings alone would
    equal it).  Returns the state and the number of tempering steps taken."""
    extra = 0
    while exps.lam < 1.0:
        extra += 1
        lam = exps.lam
        # resample (and move) first: the CESS of the next increment is only meaningful for
        # a population whose ESS is not already low
        st = _resample_move(st, weights, mover, sigma, lam, step)
        force = mover is None or extra >= max_steps
        new_lam = exps.advance(weights, -lam * st.ell, st.ell, 1.0, low=lam, force=force)
        weights.reweight((new_lam - lam) * st.ell, step)
    return st, extra
