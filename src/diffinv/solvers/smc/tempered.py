r"""Likelihood-tempered SMC from exact prior draws, for priors with a density.

The SMC sampler of Del Moral, Doucet & Jasra (2006), "Sequential Monte Carlo samplers",
JRSS B 68(3), on the path of tempered posteriors

.. math:: \pi_\lambda(x) \propto p(x)\, p(y \mid x)^\lambda, \qquad
          0 = \lambda_0 < \lambda_1 < \dots < \lambda_K = 1 ,

for priors that can be sampled exactly and have an exact log density (``prior.sample`` and
``prior.log_prob``: :class:`~diffinv.priors.GaussianPrior`,
:class:`~diffinv.priors.GaussianMixturePrior`), and any differentiable likelihood (closure
quantities, Poisson counts, phase retrieval).  Unlike TDS (:mod:`.tds`) it needs no denoiser
and no twisting function: the particles start as exact prior draws, each increment
``lambda_k -> lambda_{k+1}`` multiplies the weights by ``p(y | x)^(lambda_{k+1} - lambda_k)``
with the increment chosen by the conditional-ESS rule (:mod:`.tempering`), the particles are
resampled when the ESS falls below the threshold, and every level ends with MCMC moves that
leave ``pi_lambda`` invariant: HMC with a likelihood-informed metric
(:mod:`.informed_hmc`).  Every step is exact, so the weighted particles target the posterior
and the log-evidence estimate ``sum_k log sum_i W_i p(y | x_i)^(lambda_{k+1} - lambda_k)`` is
unbiased for ``p(y)`` (in the evidence, not its logarithm) -- up to the bias of choosing the
path from the particles, which vanishes as they grow (Beskos, Jasra, Kantas & Thiery 2016).
It is the standard remedy for sharp likelihoods in high dimension (Kantas, Beskos & Jasra
2014, "Sequential Monte Carlo methods for high-dimensional inverse problems: a case study for
the Navier-Stokes equations", SIAM/ASA JUQ 2).

Cost: per level, ``2 n / particles`` likelihood gradients per particle for the metric and
``moves * (leapfrog + 1)`` for the moves; no denoiser calls (``nfe = 0``).  The number of
levels adapts to the data (diagnostics ``tempering_steps``); it is at most ``max_levels``,
the last jumping to one.
"""

from __future__ import annotations

import math

import torch

from ...operators.problem import InverseProblem
from ..context import RunContext
from ..registry import SolverOutput, check_state
from .informed_hmc import MAX_DIM, InformedHMC, prior_root
from .particles import gather
from .tempering import next_exponent

__all__ = ["run_tempered", "check_density_prior", "takes_prior"]


def _missing_density(prior) -> list[str]:
    return [name for name in ("sample", "log_prob") if not callable(getattr(prior, name, None))]


def takes_prior(prior, n: int) -> bool:
    """Whether ``method="tempered"`` can run ``prior`` on images of ``n`` pixels: the prior
    has exact ``sample`` and ``log_prob`` and ``n <= MAX_DIM`` (what ``method="auto"`` asks)."""
    return not _missing_density(prior) and n <= MAX_DIM


def check_density_prior(prior, n: int) -> None:
    """Raise ``ValueError`` naming ``prior`` unless it can be sampled and has a density."""
    missing = _missing_density(prior)
    if missing:
        raise ValueError(
            f"prior: method='tempered' needs a prior with exact sample(n, generator, dtype) "
            f"and log_prob(x) (e.g. GaussianPrior, GaussianMixturePrior); "
            f"{type(prior).__name__} has no {' or '.join(missing)}.  Use method='tds' with "
            "a denoiser prior"
        )
    if n > MAX_DIM:
        raise ValueError(
            f"method: 'tempered' builds dense ({n}, {n}) metrics; it takes images of at most "
            f"{MAX_DIM} pixels.  Use method='tds' for larger images"
        )


def run_tempered(problem: InverseProblem, prior, ctx: RunContext, *, weights,
                 target: float, n_moves: int, n_leapfrog: int, target_acceptance: float,
                 max_levels: int, max_batch: int | None = None) -> SolverOutput:
    """Run the sampler of the module docstring.

    Parameters
    ----------
    problem : InverseProblem
        Any differentiable likelihood.
    prior
        Has ``sample`` and ``log_prob`` (:func:`check_density_prior`).
    ctx : RunContext
        ``n_samples`` particles of ``image_shape``; ``ctx.sigmas`` is not used.
    weights : ParticleWeights or RunWeights
        Weights, resampling and log-evidence (one or several independent runs).
    target : float
        CESS fraction each increment keeps, in (0, 1).
    n_moves, n_leapfrog : int
        HMC sweeps per level and leapfrog steps per trajectory.
    target_acceptance : float
        Acceptance the leapfrog step adapts to.
    max_levels : int
        Bound on the tempering levels (the last jumps to one).
    max_batch : int, optional
        Points per likelihood-gradient call while building the metric.

    Returns
    -------
    SolverOutput
        Weighted particles ``(n_samples, *image_shape)`` in ``ctx.dtype``, ``nfe = 0``.
    """
    shape, n_part = ctx.image_shape, ctx.n_samples
    n = math.prod(shape)
    check_density_prior(prior, n)
    f64 = torch.float64

    def log_prior(x: torch.Tensor) -> torch.Tensor:
        return prior.log_prob(x.reshape(-1, *shape)).to(f64)

    def grad_log_lik(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ell, g = problem.grad_log_likelihood(x.to(ctx.dtype).reshape(-1, *shape))
        return ell.to(f64), g.reshape(x.shape[0], n).to(f64)

    root = prior_root(prior, n, ctx.generator)
    mover = InformedHMC(log_prior, grad_log_lik, root, n_moves, n_leapfrog,
                        target_acceptance, ctx.generator, max_batch)
    x = prior.sample(n_part, generator=ctx.generator, dtype=f64).reshape(n_part, n)
    x = x.to(ctx.device)
    ell = grad_log_lik(x)[0]
    runs = len(weights.run_log_weights)
    per = n_part // runs
    lam, path = 0.0, []
    while lam < 1.0:
        level = len(path)
        new = 1.0 if level + 1 >= max_levels else next_exponent(
            weights.run_log_weights, ell, target, base=-lam * ell, low=lam)
        weights.reweight((new - lam) * ell, level)
        lam = new
        path.append(lam)
        idx = weights.maybe_resample(level, None)
        x, ell = gather(idx, x, ell)
        moved = []
        for k in range(runs):
            rows = slice(k * per, (k + 1) * per)
            moved.append(mover.move(x[rows], weights.run_weights[k], lam))
        x = torch.cat([m[0] for m in moved])
        ell = torch.cat([m[1] for m in moved])
        check_state(x, level, "SMC (tempered) state")
        if ctx.callback is not None:
            ctx.callback({"step": level, "sigma": 0.0, "x": x.reshape(-1, *shape),
                          "ess": weights.ess_history[-1], "exponent": lam})
    diagnostics = {"method": "tempered", **weights.diagnostics(),
                   "tempering_path": path, "tempering_steps": len(path),
                   "rejuvenation": "hmc" if n_leapfrog > 1 else "mala",
                   **mover.diagnostics()}
    return SolverOutput(samples=x.reshape(n_part, *shape).to(ctx.dtype), nfe=0,
                        weights=weights.weights, diagnostics=diagnostics)
