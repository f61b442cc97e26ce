"""Sequential Monte Carlo posterior sampling: the registered ``smc`` solver.

The particles are the samples and come with normalised importance weights
(``SolverOutput.weights``); every estimate (mean, intervals) should use them, as
:class:`~diffinv.posterior.Posterior` does.  Three algorithms:

* ``mcgdiff`` (:mod:`diffinv.solvers.smc.mcgdiff`) — linear operator with Gaussian noise: a
  proposal that uses the operator exactly through its SVD (MCGdiff, Cardoso et al. 2024; FPS,
  Dou & Song 2024).  Needs the operator's factorisation in memory
  (:mod:`diffinv.solvers.smc.factorisation`): from the operator's structure (diagonal or
  circulant normal matrix: masks, inpainting, masked Fourier, periodic blur) at any size with
  an implicit basis, else from its dense matrix; ``auto`` picks it up to
  :data:`AUTO_MCGDIFF_MAX_DIM` unknowns (beyond, its weights degenerate with tens of
  particles: ``benchmarks/README.md``, "SMC set-up").  Where the
  denoiser's Jacobian is cheap it runs with the Tweedie kernel and per-particle potentials
  (:mod:`diffinv.solvers.smc.mcgdiff_tweedie`).
* ``tds`` (:mod:`diffinv.solvers.smc.tds`) — any differentiable likelihood: twisted SMC with the
  DPS-style twisting function ``p(y | D(x_t, sigma_t))`` (Wu et al. 2023).
* ``tempered`` (:mod:`diffinv.solvers.smc.tempered`) — priors with an exact density and exact
  draws (Gaussian, Gaussian mixture) and any differentiable likelihood: likelihood tempering
  from prior draws with likelihood-informed HMC moves (Del Moral, Doucet & Jasra 2006).

All are asymptotically exact as the particle count grows (for the model's backward chain),
keep float64 log-weights, resample adaptively on the effective sample size (``mcgdiff``:
Hilbert-ordered systematic resampling and randomised quasi-Monte Carlo moves by default, the
SQMC of :mod:`diffinv.solvers.smc.sqmc`), and report
``ess_per_step``, ``n_resamples``, ``resampled_at``, ``unique_ancestors`` (distinct parents at
each resampling), ``log_evidence`` (an estimate of ``log p(y)``, float64), ``ess_final`` and
``ess_collapsed`` in the diagnostics.  ``tds`` can also temper the likelihood adaptively,
rejuvenate the particles with MCMC moves after resampling and inflate the twist's variance
(options ``tempering``, ``rejuvenation``, ``twist_inflation``): the combination that keeps
the particles alive on sharp likelihoods (:mod:`diffinv.solvers.smc.tds`).  A
``RuntimeWarning`` is issued when the ESS stays below ``collapse_fraction`` of the particles
for ``collapse_steps`` consecutive steps; NaN/Inf in any state raises ``FloatingPointError``
naming the step.
"""

from __future__ import annotations

import math

from ...operators.problem import InverseProblem
from ...validation import in_range, nonnegative_float, one_of, optional, positive_int
from ..batching import check_max_batch
from ..context import Denoiser, RunContext
from ..curvature import estimate_curvature
from ..kernels import KERNELS
from ..options import check_lipschitz
from ..registry import SolverOutput, register_solver
from .factorisation import KINDS as FACTORISATIONS
from .mcgdiff import POTENTIALS, run_mcgdiff
from .mcgdiff_tweedie import run_mcgdiff_tweedie
from .particles import ParticleWeights, RunWeights
from .rejuvenation import DEFAULT_ACCEPTANCE, DEFAULT_LEAPFROG, MOVES, Rejuvenation
from .resampling import RESAMPLERS
from .sqmc import NOISES
from .tds import run_tds
from .tempered import run_tempered, takes_prior

__all__ = ["smc", "METHODS", "SMC_KERNELS", "AUTO_MCGDIFF_MAX_DIM", "AUTO_TWEEDIE_ANALYTIC",
           "AUTO_TWEEDIE_AUTOGRAD", "AUTO_TWEEDIE_MAX_BYTES", "MCGDIFF_ESS_THRESHOLD",
           "auto_kernel"]

METHODS = ("auto", "mcgdiff", "tds", "tempered")
SMC_KERNELS = ("auto", *KERNELS, "tweedie")
#: ``method="auto"`` picks ``mcgdiff`` up to this many unknowns (an explicit ``mcgdiff`` is
#: limited by the set-up's memory only, :func:`~diffinv.solvers.smc.factorisation
#: .check_setup_memory`).
AUTO_MCGDIFF_MAX_DIM = 4096
AUTO_TWEEDIE_ANALYTIC = 256  # unknowns up to which kernel="auto" uses an analytic Jacobian
AUTO_TWEEDIE_AUTOGRAD = 64  # ... and up to which it pays one backward pass per unknown
AUTO_TWEEDIE_MAX_BYTES = 2**30  # ... and while one (particles, n, n) float64 array fits in this
MCGDIFF_ESS_THRESHOLD = 0.2  # default ESS fraction below which the Tweedie kernel resamples
TEMPERED_CESS = 0.5  # method="tempered": default CESS fraction kept by each increment


@register_solver("smc")
def smc(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    method: str = "auto",
    resampling: str = "auto",
    ess_threshold: float | None = None,
    max_batch: int | None = None,
    collapse_fraction: float = 0.05,
    collapse_steps: int = 10,
    potential: str = "auto",
    kernel: str = "auto",
    n_runs: int = 1,
    lipschitz: float | None = None,
    tempering: float | None = None,
    rejuvenation: str = "none",
    rejuvenation_moves: int = 2,
    rejuvenation_leapfrog: int = DEFAULT_LEAPFROG,
    target_acceptance: float | None = None,
    twist_inflation: float = 0.0,
    max_tempering_steps: int = 50,
    noise: str = "auto",
    factorisation: str = "auto",
) -> SolverOutput:
    """Run sequential Monte Carlo with ``n_samples`` particles.

    Parameters
    ----------
    method : {"auto", "mcgdiff", "tds", "tempered"}
        ``auto`` picks ``mcgdiff`` when ``problem.is_linear_gaussian`` and the image has at
        most :data:`AUTO_MCGDIFF_MAX_DIM` values, else ``tempered`` when the prior has a
        density (``sample`` and ``log_prob``) and the image at most 4096 pixels, else
        ``tds`` (denoiser priors: learned networks).  An explicit ``mcgdiff`` runs
        at any size whose set-up fits in memory (else a ``ValueError`` states the estimate);
        on structured operators (diagonal or circulant normal matrix) that is any size, with
        an implicit basis.  ``tempered`` (:mod:`diffinv.solvers.smc.tempered`): likelihood
        tempering from exact prior draws with likelihood-informed HMC moves, for priors with
        ``sample`` and ``log_prob`` (:class:`~diffinv.priors.GaussianPrior`,
        :class:`~diffinv.priors.GaussianMixturePrior`) and any differentiable likelihood, up
        to 4096 pixels; it uses no denoiser and ignores the noise schedule (``steps``); the
        levels adapt to the data.  Options that apply to it: ``tempering`` (default
        :data:`TEMPERED_CESS`), ``rejuvenation`` (``none`` or ``hmc``: HMC; ``mala``: one
        leapfrog step), ``rejuvenation_moves`` (sweeps per level), ``rejuvenation_leapfrog``,
        ``target_acceptance``, ``max_tempering_steps`` (bound on all levels), ``n_runs``,
        ``ess_threshold``, ``resampling``, ``max_batch`` (points per likelihood-gradient call
        of the metric).
    resampling : {"auto", "systematic", "ordered", "multinomial"}
        Resampling scheme (:mod:`diffinv.solvers.smc.resampling`); ``ordered`` is systematic
        resampling of the particles sorted along a Hilbert curve (lower variance of the
        counts per region of space; Gerber, Chopin & Whiteley 2019).  ``auto``: ``ordered``
        for ``mcgdiff``, ``systematic`` for ``tds``.
    ess_threshold : float, optional
        Resample when ESS / particles falls below this value, in [0, 1] (0 never
        resamples, 1 resamples every step).  Default: :data:`MCGDIFF_ESS_THRESHOLD` with
        ``kernel="tweedie"``, else 0.5.  The Tweedie kernel with its per-particle potentials
        keeps the weights nearly even (exactly, for a Gaussian prior), and a resampling there
        added more noise to a run's mode weights than the uneven weights it removed; with
        the isotropic kernels the weights degrade step after step and resampling at 50%
        keeps them alive (both measured on the mixture benchmark, ``benchmarks/README.md``,
        "SMC per-run exactness").  The value used is ``ess_threshold`` in the diagnostics.
    max_batch : int, optional
        Largest number of particles per denoiser (and Jacobian) call, bounding the memory of
        the network's activations; ``None`` = all.  The Tweedie kernel's ``(particles, n, n)``
        arrays are not chunked.
    collapse_fraction : float
        ESS fraction in (0, 1] below which a step counts towards the collapse warning.
    collapse_steps : int
        Consecutive low-ESS steps that trigger the warning (positive).
    potential : {"auto", "adaptive", "local", "flat"}
        Intermediate potentials of ``mcgdiff`` (ignored by ``tds``): ``adaptive`` fits one
        local Gaussian model to all particles at each step; ``local`` gives each particle its
        own from the denoiser's Jacobian (with ``kernel="tweedie"`` the full Jacobian that
        the kernel computes anyway; otherwise its diagonal in the observed directions: one
        backward pass per observed direction, up to 8, then a random probe); ``flat`` uses
        ``N(ybar; xbar, rho^2 + sigma^2)``.  ``auto``: ``local`` (with any kernel).  With the
        isotropic kernels ``local`` costs ``min(r, 8)`` backward passes per particle and step
        (``r`` observed directions) where ``adaptive`` costs none; ``adaptive``'s one
        Gaussian model for all particles misses multimodal priors, which single runs show
        (measured errors and costs: ``benchmarks/README.md``, "SMC per-run exactness").  See
        :mod:`diffinv.solvers.smc.mcgdiff`.
    kernel : {"auto", "tweedie", "midpoint", "ddpm"}
        The model's backward kernel (the particles' prior dynamics).  ``tweedie``
        (:mod:`diffinv.solvers.smc.tweedie_kernel`, ``mcgdiff`` only) has the full covariance
        ``s'^2 (1 - a) I + (1 - a)^2 Cov(x_0 | x_s)`` from the denoiser's Jacobian: exact for
        Gaussian priors at any number of steps and much closer to the exact posterior on the
        mixture benchmark (``benchmarks/README.md``, "Solver accuracy"); it costs the
        Jacobian (analytic for :class:`~diffinv.priors.GaussianPrior` and
        :class:`~diffinv.priors.GaussianMixturePrior`, else one backward pass per unknown)
        and ``(particles, n, n)`` float64 matrices.  ``midpoint`` and ``ddpm`` are isotropic
        (:func:`diffinv.solvers.kernels.reverse_kernel`): ``ddpm`` is the ancestral
        (eta = 1) kernel, ``midpoint`` the average of it and the Euler-Maruyama variance.
        ``auto`` picks ``tweedie`` for ``mcgdiff`` when the prior has an analytic
        ``denoiser_jacobian`` and at most :data:`AUTO_TWEEDIE_ANALYTIC` unknowns, or at most
        :data:`AUTO_TWEEDIE_AUTOGRAD` unknowns otherwise, and one ``(particles, n, n)``
        float64 array takes at most :data:`AUTO_TWEEDIE_MAX_BYTES` (the run holds a few
        such arrays); else ``midpoint``.  Its cost per step grows like ``particles * n^3``
        where the Jacobian differs per particle (a mixture prior; a batch-shared one, as for
        a Gaussian prior, is cheap); measured costs in ``benchmarks/README.md``.
    n_runs : int
        Number of independent SMC runs batched together (same denoiser calls, one batch);
        ``n_samples`` must be a multiple of it and each run has ``n_samples // n_runs``
        particles (rows ``k * n .. (k + 1) * n - 1`` belong to run ``k``).  Each run has its
        own weights, resampling and log-evidence; the returned weights are normalised within
        each run and divided by ``n_runs`` (so they sum to one), and every per-run diagnostic
        becomes a list over runs (``ess_per_step[k]`` is run ``k``'s history), plus
        ``n_runs``.  Independent runs give honest error bars (the spread between runs) and
        average out the weight noise of one run at the same cost per particle.
    lipschitz : float, optional
        ``tds`` only: the curvature ``L`` of ``-log p(y | x)`` that damps the proposal's
        gradient step to ``v / (1 + v L)`` (:mod:`diffinv.solvers.smc.tds`); default: estimated
        at the prior mean image (:func:`diffinv.solvers.curvature.estimate_curvature`);
        0 gives the undamped proposal of Wu et al. (2023).
    tempering : float, optional
        ``tds`` only: adaptive tempering of the likelihood.  Each increment of the exponent is
        the largest whose conditional ESS keeps this fraction of the particles, in (0, 1)
        (:mod:`diffinv.solvers.smc.tempering`; e.g. 0.5); the exponent rises from 0 to 1 over
        the steps, and tempering steps at the last level finish it (at most
        ``max_tempering_steps``, the last jumping to 1).  ``None``: no tempering.
    rejuvenation : {"none", "mala", "hmc", "pcn"}
        ``tds`` only: MCMC moves after each resampling that leave the current target
        invariant (:mod:`diffinv.solvers.smc.rejuvenation`): Metropolis-adjusted Langevin,
        Hamiltonian Monte Carlo (``rejuvenation_leapfrog`` leapfrog steps) or
        preconditioned Crank-Nicolson with a reference fitted to the particles.
    rejuvenation_moves : int
        Sweeps per rejuvenation (each one denoiser call with a backward pass per particle;
        ``hmc``: ``rejuvenation_leapfrog`` calls).
    rejuvenation_leapfrog : int
        Leapfrog steps per HMC transition (positive; ``hmc`` only).
    target_acceptance : float, optional
        Acceptance rate the moves' step adapts to, in (0, 1); default 0.574 (MALA), 0.65
        (HMC), 0.25 (pCN).
    twist_inflation : float
        ``tds`` only: ``kappa >= 0`` of the variance-inflated twist
        ``p(y | D(x_k))^(1 / (1 + kappa L sigma_k^2))`` (:mod:`diffinv.solvers.smc.tds`);
        0: the plain DPS twist.
    max_tempering_steps : int
        Bound on the tempering steps at the last level (positive; ``tempered``: on all its
        levels).
    noise : {"auto", "pseudo", "rqmc"}
        ``mcgdiff`` only: the normals of the moves, independent (``pseudo``) or randomised
        quasi-Monte Carlo points given to the particles in Hilbert order (``rqmc``; with
        ``resampling="ordered"`` the SQMC of Gerber & Chopin 2015;
        :mod:`diffinv.solvers.smc.sqmc`).  ``auto``: ``rqmc`` for ``mcgdiff`` (with the
        ordered resampling it keeps the mode weights of a single run below the noise of an
        exact sample on the mixture benchmark, ``benchmarks/README.md``), ``pseudo`` for
        ``tds``.
    factorisation : {"auto", "diagonal", "circulant", "row-gram", "economy", "gram", "dense"}
        ``mcgdiff`` only: how the whitened operator is factorised
        (:func:`diffinv.solvers.smc.factorisation.factorise`).  ``auto``: the operator's
        structure where it has one (``diagonal``, ``circulant``), else the economy
        ``row-gram`` (only the ``r`` observed directions; the unobserved complement is moved
        by a projector with the same law) when there are fewer data rows than unknowns, else
        the ``dense`` SVD.  The choice and its wall time are ``factorisation`` and
        ``setup_seconds`` in the diagnostics.

    With any of ``tempering``, ``rejuvenation`` or ``twist_inflation`` set, ``method="auto"``
    picks ``tds`` (give ``method="tempered"`` for tempering and HMC moves from prior draws);
    the diagnostics then add ``tempering_path`` (the exponent ``lambda`` after each
    reweighting, aligned with ``ess_per_step``), ``tempering_steps``, ``move_acceptance`` and
    ``move_steps`` (per sweep) and ``move_evaluations``; every run reports
    ``unique_ancestors`` (distinct parents at each resampling).

    Returns
    -------
    SolverOutput
        Particles ``(n_samples, *image_shape)``, float64 normalised ``weights``,
        ``nfe = steps`` (one denoiser call per particle and step) and diagnostics.
    """
    n_samples, image_shape = ctx.n_samples, ctx.image_shape
    one_of("method", method, METHODS)
    one_of("resampling", resampling, ["auto", *sorted(RESAMPLERS)])
    optional(in_range, "ess_threshold", ess_threshold, 0.0, 1.0)
    check_max_batch(max_batch)
    in_range("collapse_fraction", collapse_fraction, 0.0, 1.0, low_open=True)
    positive_int("collapse_steps", collapse_steps)
    one_of("potential", potential, ("auto", *POTENTIALS))
    one_of("kernel", kernel, SMC_KERNELS)
    positive_int("n_runs", n_runs)
    if n_samples % n_runs:
        raise ValueError(
            f"n_runs: n_samples ({n_samples}) must be a multiple of n_runs ({n_runs})"
        )
    check_lipschitz(lipschitz)
    optional(in_range, "tempering", tempering, 0.0, 1.0, low_open=True, high_open=True)
    one_of("rejuvenation", rejuvenation, MOVES)
    positive_int("rejuvenation_moves", rejuvenation_moves)
    positive_int("rejuvenation_leapfrog", rejuvenation_leapfrog)
    optional(in_range, "target_acceptance", target_acceptance, 0.0, 1.0, low_open=True,
             high_open=True)
    nonnegative_float("twist_inflation", twist_inflation)
    positive_int("max_tempering_steps", max_tempering_steps)
    one_of("noise", noise, ("auto", *NOISES))
    one_of("factorisation", factorisation, FACTORISATIONS)
    tds_only = tempering is not None or rejuvenation != "none" or twist_inflation > 0.0
    if method == "mcgdiff" and tds_only:
        raise ValueError("tempering, rejuvenation and twist_inflation: available with "
                         "method='tds' only")
    if method == "auto":
        n_pixels = math.prod(image_shape)
        if tds_only:
            method = "tds"
        elif problem.is_linear_gaussian and n_pixels <= AUTO_MCGDIFF_MAX_DIM:
            method = "mcgdiff"
        elif takes_prior(prior, n_pixels):
            method = "tempered"
        else:
            method = "tds"
    if method == "tempered" and (twist_inflation > 0.0 or rejuvenation == "pcn"):
        raise ValueError("twist_inflation, rejuvenation: method='tempered' has no twist "
                         "and moves by HMC ('hmc', or 'mala' for one leapfrog step)")
    if noise == "rqmc" and method in ("tds", "tempered"):
        raise ValueError("noise: 'rqmc' is available with method='mcgdiff' only")
    if resampling == "auto":
        resampling = "ordered" if method == "mcgdiff" else "systematic"
    if noise == "auto":
        noise = "rqmc" if method == "mcgdiff" else "pseudo"
    if kernel == "auto":
        kernel = (auto_kernel(prior, math.prod(image_shape), n_samples)
                  if method == "mcgdiff" else "midpoint")
    if potential == "auto":
        potential = "local"
    if ess_threshold is None:
        ess_threshold = MCGDIFF_ESS_THRESHOLD if kernel == "tweedie" else 0.5
    if kernel == "tweedie" and method != "mcgdiff":
        raise ValueError("kernel: 'tweedie' is available with method='mcgdiff' only (a linear "
                         "operator with Gaussian noise); use 'midpoint' or 'ddpm' with 'tds'")
    weight_options = dict(
        device=problem.y.device, scheme=resampling, ess_threshold=float(ess_threshold),
        generator=ctx.generator, collapse_fraction=float(collapse_fraction),
        collapse_steps=collapse_steps,
    )
    if n_runs == 1:
        weights = ParticleWeights(n_samples, **weight_options)
    else:
        weights = RunWeights(n_runs, n_samples // n_runs, **weight_options)
    common = dict(weights=weights, max_batch=max_batch)
    if method == "tempered":
        kind = "mala" if rejuvenation == "mala" else "hmc"
        out = run_tempered(
            problem, prior, ctx, weights=weights,
            target=TEMPERED_CESS if tempering is None else float(tempering),
            n_moves=rejuvenation_moves,
            n_leapfrog=1 if kind == "mala" else rejuvenation_leapfrog,
            target_acceptance=(DEFAULT_ACCEPTANCE[kind] if target_acceptance is None
                               else float(target_acceptance)),
            max_levels=max_tempering_steps, max_batch=max_batch)
        out.diagnostics.update(resampling=resampling, ess_threshold=float(ess_threshold))
        return out
    if method == "mcgdiff" and kernel == "tweedie":
        out = run_mcgdiff_tweedie(problem, prior, ctx, potential=potential, noise=noise,
                                  factorisation=factorisation, **common)
    elif method == "mcgdiff":
        out = run_mcgdiff(problem, prior, ctx, potential=potential, kernel=kernel,
                          noise=noise, factorisation=factorisation, **common)
    else:
        curvature = (float(lipschitz) if lipschitz is not None
                     else estimate_curvature(problem, prior, ctx.image_shape, ctx.sigmas,
                                                ctx.dtype))
        mover = None
        if rejuvenation != "none":
            acc = (DEFAULT_ACCEPTANCE[rejuvenation] if target_acceptance is None
                   else float(target_acceptance))
            mover = Rejuvenation(rejuvenation, rejuvenation_moves, acc, prior,
                                 problem.log_likelihood, max_batch, ctx.generator,
                                 n_leapfrog=rejuvenation_leapfrog)
        out = run_tds(problem, prior, ctx, kernel=kernel, curvature=curvature,
                      tempering=None if tempering is None else float(tempering),
                      inflation=float(twist_inflation), mover=mover,
                      max_tempering_steps=max_tempering_steps, **common)
    out.diagnostics.update(resampling=resampling, kernel=kernel,
                           ess_threshold=float(ess_threshold))
    if method == "mcgdiff":
        out.diagnostics.update(noise=noise, potential=potential)
    return out


#: raise when what an unchanged default resolves to changes (e.g. ``auto_kernel``, the
#: ``ess_threshold`` per kernel, ``potential="auto"``), so that study task ids change with it
#: (:func:`diffinv.study.tasks.solver_fingerprint`)
smc.defaults_version = 2  # 2: auto picks tempered for density priors where it picked tds


def auto_kernel(prior, n: int, particles: int) -> str:
    """``tweedie`` where the Jacobian is cheap and its ``(particles, n, n)`` arrays are small
    (see ``kernel`` in :func:`smc`), else ``midpoint``."""
    analytic = callable(getattr(prior, "denoiser_jacobian", None))
    limit = AUTO_TWEEDIE_ANALYTIC if analytic else AUTO_TWEEDIE_AUTOGRAD
    small = 8 * particles * n * n <= AUTO_TWEEDIE_MAX_BYTES
    return "tweedie" if n <= limit and small else "midpoint"
