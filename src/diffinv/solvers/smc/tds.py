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
from .particles import ParticleWeights, RunWeights, denoise, gather

__all__ = ["run_tds"]


def run_tds(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    weights: ParticleWeights | RunWeights,
    max_batch: int | None,
    kernel: str = "midpoint",
    curvature: float = 0.0,
) -> SolverOutput:
    """Run the twisted diffusion sampler (see the module docstring).

    ``curvature`` is ``L`` of the damped proposal (1/image units^2; 0: undamped).

    Returns
    -------
    SolverOutput
        ``samples`` ``(n_samples, *image_shape)``, float64 normalised ``weights``
        ``(n_samples,)``, ``nfe = steps`` and the particle diagnostics.
    """
    sigmas, n_samples, image_shape = ctx.sigmas, ctx.n_samples, ctx.image_shape
    dtype, generator, callback = ctx.dtype, ctx.generator, ctx.callback
    device = problem.y.device
    steps = len(sigmas) - 1
    s0 = float(sigmas[0])
    x = initial_noise(n_samples, image_shape, s0, dtype, device, generator)
    x0, twist, grad = denoise(prior, x, s0, max_batch, problem.log_likelihood)
    check_state(grad, 0, "SMC (tds) twist gradient")
    # initial weights: the twist itself (the prior is sampled exactly)
    weights.reweight(twist, 0)
    for i in progress_bar(range(steps), ctx.progress, "smc-tds"):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        mean, var = reverse_kernel(x, x0, s, s_next, kernel)
        if var == 0.0:  # last step: x0 = D(x, sigma_min); the twist equals the likelihood
            x = mean
            if callback is not None:
                callback({"step": i, "sigma": s, "x": x, "x0_hat": x0,
                          "ess": weights.ess_history[-1]})
            break
        idx = weights.maybe_resample(i)
        mean, grad, twist = gather(idx, mean, grad, twist)
        noise = torch.randn(x.shape, dtype=dtype, device=device, generator=generator)
        damp = 1.0 / (1.0 + var * curvature)
        x_new = mean + (damp * var) * grad + var**0.5 * noise
        check_state(x_new, i, "SMC (tds) state")
        # log N(x'; mu, v) - log N(x'; mu + c v g, v) = -c g.(x' - mu) + c^2 v |g|^2 / 2,
        # with the twist gradient g at x_k
        g = grad.reshape(n_samples, -1).to(torch.float64)
        d = (x_new - mean).reshape(n_samples, -1).to(torch.float64)
        log_ratio = -damp * (g * d).sum(1) + 0.5 * damp**2 * var * (g**2).sum(1)
        x0, twist_new, grad = denoise(prior, x_new, s_next, max_batch, problem.log_likelihood)
        check_state(grad, i + 1, "SMC (tds) twist gradient")
        weights.reweight(log_ratio + twist_new - twist, i + 1)
        x, twist = x_new, twist_new
        if callback is not None:
            callback({"step": i, "sigma": s, "x": x, "x0_hat": x0,
                      "ess": weights.ess_history[-1]})
    diagnostics = {"method": "tds", "curvature": float(curvature), **weights.diagnostics()}
    return SolverOutput(samples=x.detach(), nfe=steps, weights=weights.weights,
                        diagnostics=diagnostics)
