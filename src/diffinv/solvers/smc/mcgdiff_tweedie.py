r"""The operator-exact SMC sampler (:mod:`diffinv.solvers.smc.mcgdiff`) with the Tweedie kernel.

Same Feynman-Kac construction as :func:`~diffinv.solvers.smc.mcgdiff.run_mcgdiff` (weight,
resample, then move with the locally optimal proposal; potentials linear-Gaussian in the
particle, exact likelihood at ``sigma = 0``), but the model's backward kernel is the
moment-matched one with the full covariance ``s'^2 (1 - a) I + (1 - a)^2 s^2 dD/dx``
(:mod:`diffinv.solvers.smc.tweedie_kernel`), so the chain that the particles follow is exact for
Gaussian priors and much closer to the prior for multimodal ones.  The proposal and the
incremental weights are the Kalman update and predictive density of that kernel against the
potential, per particle.

Potentials: ``local`` (recommended with this kernel; it reuses the Jacobian that the kernel
needs) is each particle's local Gaussian model of the prior from the full Jacobian
(:meth:`~diffinv.solvers.smc.tweedie_kernel.MatrixPotential.local`); ``adaptive`` and ``flat`` are
those of :mod:`diffinv.solvers.smc.mcgdiff`.

Cost per step: one Jacobian (analytic for the mixture) plus one ``n x n`` Cholesky factor
per particle, i.e. ``O(N n^3)``; one factor in all when the Jacobian is shared by every
particle (a Gaussian prior).  Measured error and wall time against the isotropic kernels:
``benchmarks/README.md`` ("Solver accuracy"), reproduced by ``benchmarks/exactness.py``.
"""

from __future__ import annotations

import torch

from ...operators.problem import InverseProblem
from ..context import Denoiser, RunContext
from ..registry import SolverOutput, check_state
from ..utils import initial_noise, progress_bar
from .mcgdiff import GaussianPotential, SVDLikelihood, fit_per_run
from .particles import ParticleWeights, RunWeights, denoise, gather
from .sqmc import move_normals
from .tweedie_kernel import MatrixPotential, denoiser_jacobian, tweedie_kernel

__all__ = ["run_mcgdiff_tweedie"]


def run_mcgdiff_tweedie(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    weights: ParticleWeights | RunWeights,
    max_batch: int | None,
    potential: str = "local",
    noise: str = "pseudo",
    factorisation: str = "auto",
) -> SolverOutput:
    """Run operator-exact SMC with the Tweedie kernel (module docstring).

    ``noise``: ``pseudo`` (independent normals) or ``rqmc`` (scrambled Sobol points in the
    Hilbert order of the particles, :func:`~diffinv.solvers.smc.sqmc.move_normals`).
    ``factorisation``: :func:`~diffinv.solvers.smc.factorisation.factorise`'s ``kind``; the
    kernel works with the full particles and ``V_r`` only, so an economy one serves as well.

    Returns
    -------
    SolverOutput
        ``samples`` ``(n_samples, *image_shape)``, normalised float64 ``weights``,
        ``nfe = steps`` denoiser calls per particle, and diagnostics including
        ``backward_passes`` (per particle, for the Jacobians) and ``kernel = "tweedie"``.
    """
    sigmas, n_samples, image_shape = ctx.sigmas, ctx.n_samples, ctx.image_shape
    dtype, generator, callback = ctx.dtype, ctx.generator, ctx.callback
    device = problem.y.device
    lik = SVDLikelihood.on_device(problem, image_shape, factorisation)
    r, ybar, rho2 = lik.rank, lik.ybar, lik.rho2
    v_obs = lik.basis.observed(r)
    steps = len(sigmas) - 1
    x = initial_noise(n_samples, image_shape, float(sigmas[0]), dtype, device, generator)
    current: MatrixPotential | None = None
    passes = 0
    f64 = torch.float64
    for i in progress_bar(range(steps), ctx.progress, "smc-mcgdiff-tweedie"):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        if s_next > 0.0:
            x0, jac = denoiser_jacobian(prior, x, s, max_batch)
            passes += 0 if callable(getattr(prior, "denoiser_jacobian", None)) else x[0].numel()
        else:  # the last step is deterministic (x0 = D(x, sigma_min)): no Jacobian needed
            x0, _, _ = denoise(prior, x, s, max_batch)
            jac = None
        check_state(x0, i, "SMC (mcgdiff) denoised estimate")
        xf, x0f = x.reshape(n_samples, -1).to(f64), x0.reshape(n_samples, -1).to(f64)
        kern = tweedie_kernel(xf, x0f, jac, s, s_next)
        if potential == "local" or s_next == 0.0:
            nxt = MatrixPotential.local(ybar, rho2, v_obs, x0f, kern, s_next)
        else:
            lam, m = (fit_per_run(xf @ v_obs, x0f @ v_obs, weights, s)
                      if potential == "adaptive" else (None, None))
            gp = GaussianPotential.at(lik, s_next, lam, m)
            nxt = MatrixPotential.from_diagonal(ybar, v_obs, gp.alpha, gp.beta, gp.c, n_samples)
        pred = nxt.predict(kern)
        log_inc = pred.log_predictive
        if current is not None:
            log_inc = log_inc - current.log_value(xf)
        weights.reweight(log_inc, i)
        if s_next > 0.0:
            idx = weights.maybe_resample(i, xf)
            kern, nxt, pred = kern.gather(idx), nxt.gather(idx), pred.gather(idx)
            (parents,) = gather(idx, xf)
            z, e = move_normals(noise, parents, (xf.shape[1], r), weights.n_runs, generator)
            x = nxt.propose(kern, pred, z, e).to(dtype).reshape(x.shape)
        else:
            x = x0
        current = nxt
        check_state(x, i, "SMC (mcgdiff) state")
        if callback is not None:
            callback({"step": i, "sigma": s, "x": x, "x0_hat": x0,
                      "ess": weights.ess_history[-1]})
    weights.add_log_evidence(lik.log_const)
    diagnostics = {"method": "mcgdiff", "kernel": "tweedie", "rank": r,
                   **lik.setup_diagnostics(),
                   "backward_passes": passes, **weights.diagnostics()}
    return SolverOutput(samples=x.detach(), nfe=steps, weights=weights.weights,
                        diagnostics=diagnostics)
