"""``diffinv.sample``: one entry point for every registered posterior sampler."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from .memory import check_memory
from .operators.problem import InverseProblem
from .posterior import Posterior
from .priors.base import shape_mismatch
from .quality import fit_warnings
from .schedules import get_schedule
from .solvers.context import RunContext
from .solvers.registry import get_solver, solver_options
from .validation import positive_int

__all__ = ["sample", "push_forward"]

DEFAULT_SIGMA_MIN = 0.002
DEFAULT_SIGMA_MAX = 80.0
MAX_SEED = 2**63 - 1


def sample(
    problem: InverseProblem,
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    solver: str = "dps",
    n_samples: int = 8,
    steps: int = 100,
    seed: int | None = 0,
    *,
    schedule: str = "karras",
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    dtype: torch.dtype = torch.float32,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    physical_range: tuple[float, float] | None = None,
    **options: Any,
) -> Posterior:
    """Draw posterior samples of ``x`` given the data of ``problem`` under ``prior``.

    Parameters
    ----------
    problem : InverseProblem
        Operator, noise model and data.
    prior : callable
        Denoiser ``prior(x, sigma) -> E[x0 | x]`` (VE/EDM convention).  Its optional
        ``sigma_min``/``sigma_max``/``event_shape`` attributes set defaults.  A fixed-size
        prior's ``event_shape`` must equal the image shape; a size-agnostic prior (with
        ``channels``, ``min_size``, ``max_size``) takes any size within its limits.
    solver : str
        Registered solver name (see :func:`diffinv.solvers.available_solvers`).
    n_samples : int
        Number of independent chains (or particles for SMC).
    steps : int
        Number of noise levels (each costs at least one denoiser call per chain).
    seed : int or None
        Seed in ``[0, 2**63 - 1]`` of the ``torch.Generator`` on the data's device; the same
        seed reproduces a run bit for bit on one device.  ``None`` draws a random seed
        (recorded in metadata).
    schedule : str
        Sigma schedule name (``karras``, ``geometric``, ``linear``).
    sigma_min, sigma_max : float, optional
        Noise range; default to the prior's attributes, else 0.002 and 80.
    dtype : torch.dtype
        Real dtype of the chains (``torch.float64`` for exactness studies).
    callback : callable, optional
        Called after each step with a dict (``step``, ``sigma``, ``x``, ...).
    progress : bool
        Show a progress bar.
    physical_range : (float, float), optional
        Lowest and highest physical pixel value (e.g. ``(0, inf)`` for attenuation or flux
        density); defaults to the prior's ``physical_range`` attribute.  A posterior mean
        outside it is reported in the warnings.
    **options
        Solver-specific options; an unknown name raises ``ValueError`` naming it.

    Returns
    -------
    Posterior
        Samples with ``diagnostics`` holding ``nfe`` (denoiser calls per chain),
        ``wall_seconds``, ``reduced_chi2`` (of each sample, and ``reduced_chi2_mean`` of
        the posterior mean; ``reduced_chi2_mean_by_product`` when the noise model has a
        ``chi2_by_product`` method, as combined VLBI data products do) and the solver's own
        entries, and ``warnings``: sentences on a failed fit (reduced chi^2 of the mean above
        10 or NaN) or values outside ``physical_range`` (see :mod:`diffinv.quality`), each
        also emitted as a :class:`RuntimeWarning`.

    Raises
    ------
    ValueError
        For bad arguments (named), or when the chains cannot fit in memory
        (:func:`diffinv.memory.check_memory`).
    """
    if not isinstance(problem, InverseProblem):
        raise ValueError(f"problem: expected an InverseProblem, got {type(problem).__name__}")
    if not callable(prior):
        raise ValueError("prior: expected a callable denoiser prior(x, sigma)")
    fn = get_solver(solver)
    known = solver_options(solver)
    for name in options:
        if name not in known:
            raise ValueError(
                f"{name}: unknown option for solver {solver!r}; its options are {sorted(known)}"
            )
    positive_int("n_samples", n_samples)
    positive_int("steps", steps)
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise ValueError(f"seed: expected an integer in [0, 2**63 - 1] or None, got {seed!r}")
    if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype: expected a real floating dtype, got {dtype}")
    image_shape = problem.image_shape or getattr(prior, "event_shape", None)
    if image_shape is None:
        raise ValueError(
            "problem: image shape unknown; pass image_shape to InverseProblem or use a prior "
            "with an event_shape attribute"
        )
    image_shape = tuple(image_shape)
    why = shape_mismatch(prior, image_shape)
    if why is not None:
        raise ValueError(f"prior: {why}")
    lo = sigma_min if sigma_min is not None else getattr(prior, "sigma_min", None)
    hi = sigma_max if sigma_max is not None else getattr(prior, "sigma_max", None)
    # A prior whose sigma_min is 0 (or unset) cannot start the schedule's last level at 0
    # (the Karras/geometric schedules need a positive end before the final jump to 0), so
    # it gets DEFAULT_SIGMA_MIN; the value used is recorded in the metadata.
    lo = float(lo) if lo else DEFAULT_SIGMA_MIN
    hi = float(hi) if hi else DEFAULT_SIGMA_MAX
    sigmas = get_schedule(schedule)(steps, lo, hi)
    check_memory(n_samples, image_shape, problem.y, dtype, operator=problem.operator)

    device = problem.y.device
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    generator = torch.Generator(device=device).manual_seed(int(seed))

    ctx = RunContext(
        sigmas=sigmas,
        n_samples=n_samples,
        image_shape=image_shape,
        dtype=dtype,
        generator=generator,
        device=device,
        callback=callback,
        progress=progress,
    )
    start = time.perf_counter()
    out = fn(problem, prior, ctx, **options)
    wall = time.perf_counter() - start

    samples = out.samples.detach()
    if not bool(torch.isfinite(samples).all()):
        raise FloatingPointError(f"solver {solver!r} returned NaN or Inf samples")
    diagnostics: dict[str, Any] = {
        "solver": solver,
        "nfe": int(out.nfe),
        "wall_seconds": wall,
        "steps": steps,
    }
    diagnostics.update(_fit_diagnostics(problem, samples, out.weights))
    diagnostics.update(out.diagnostics)
    if physical_range is None:
        physical_range = getattr(prior, "physical_range", None)
    found = fit_warnings(diagnostics, _weighted_mean(samples, out.weights), physical_range,
                         str(getattr(prior, "units", "") or ""))
    diagnostics["warnings"] = found
    for message in found:
        warnings.warn(f"diffinv.sample({solver!r}): {message}", RuntimeWarning, stacklevel=2)
    opts = {**known, **options}
    metadata = {
        "solver": solver,
        "options": {k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool))},
        "seed": int(seed),
        "schedule": schedule,
        "sigma_min": lo,
        "sigma_max": hi,
        "n_samples": n_samples,
        "dtype": str(dtype).replace("torch.", ""),
    }
    return Posterior(samples, out.weights, diagnostics, metadata)


def _weighted_mean(samples: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The (weighted) mean over the samples' leading axis."""
    if weights is None:
        return samples.mean(0)
    w = weights.detach().to(samples.device, torch.float64)
    w = w / w.sum()
    return (w.reshape((-1,) + (1,) * (samples.ndim - 1)).to(samples.dtype) * samples).sum(0)


@torch.no_grad()
def _fit_diagnostics(
    problem: InverseProblem, samples: torch.Tensor, weights: torch.Tensor | None, chunk: int = 64
) -> dict[str, Any]:
    """Reduced chi^2 of each sample and of the (weighted) posterior mean."""
    red = []
    for start in range(0, samples.shape[0], chunk):
        red.append(problem.reduced_chi2(samples[start : start + chunk]).detach().cpu())
    red = torch.cat(red).to(torch.float64)
    mean = _weighted_mean(samples, weights)
    red_mean = float(problem.reduced_chi2(mean[None])[0])
    out = {
        "reduced_chi2": red.tolist(),
        "reduced_chi2_median": float(red.median()),
        "reduced_chi2_mean": red_mean if math.isfinite(red_mean) else str(red_mean),
        "n_data": int(problem.noise.n_data(problem.y)),
    }
    by_product = getattr(problem.noise, "chi2_by_product", None)
    if callable(by_product):  # noise models made of several data products (e.g. VLBI)
        parts = by_product(problem.y, problem.forward(mean[None]))
        out["reduced_chi2_mean_by_product"] = {k: float(v[0]) for k, v in parts.items()}
    return out


def push_forward(
    posterior: Posterior,
    field: Callable[[torch.Tensor], torch.Tensor],
    image_problem: InverseProblem,
    physical_range: tuple[float, float] | None = None,
    units: str = "",
    chunk: int = 64,
) -> Posterior:
    """The posterior over images ``x = field(z)`` from a posterior sampled over latent ``z``.

    A prior written on a latent vector (e.g. the log-normal field ``x = exp(mu + R z)`` with
    ``z ~ N(0, I)``, :class:`~diffinv.operators.LogNormalField`) is sampled in ``z``; its
    image summaries must be taken over the images of the samples, since for a nonlinear
    field the image of the mean of ``z`` is not the mean image (for a log-normal field it is
    the median, below the mean by about ``exp(var / 2)``).

    Parameters
    ----------
    posterior : Posterior
        Samples ``(n, *latent_shape)`` with their weights and diagnostics.
    field : callable
        ``(m, *latent_shape) -> (m, *image_shape)``, applied in chunks of ``chunk`` on the
        device of ``image_problem.y`` (where the field must be too).
    image_problem : InverseProblem
        The same data on images: ``image_problem.forward(field(z))`` is the latent problem's
        ``forward(z)``.
    physical_range : (float, float), optional
        Physical bounds of an image pixel, for the range warnings.
    units : str
        Units named in the warnings.

    Returns
    -------
    Posterior
        ``(n, *image_shape)`` samples with the same weights; the latent run's diagnostics with
        the fit entries (reduced chi^2 of each sample, of the mean image and per data product)
        and the fit warnings recomputed on the images; ``metadata["latent_shape"]``.
    """
    z = posterior.samples
    device = image_problem.y.device  # the field and the image problem's device (CPU, GPU)
    with torch.no_grad():
        images = torch.cat([field(z[i : i + chunk].to(device)).detach()
                            for i in range(0, z.shape[0], chunk)])
    if images.shape[0] != z.shape[0] or tuple(images.shape[1:]) != image_problem.image_shape:
        raise ValueError(
            f"field: mapped {tuple(z.shape)} latent samples to {tuple(images.shape)}, expected "
            f"({z.shape[0]}, {', '.join(map(str, image_problem.image_shape))})"
        )
    dtype = image_problem.y.real.dtype
    diagnostics = dict(posterior.diagnostics)
    diagnostics.update(_fit_diagnostics(image_problem, images.to(dtype), posterior.weights))
    diagnostics["warnings"] = fit_warnings(
        diagnostics, _weighted_mean(images, posterior.weights), physical_range, units
    )
    metadata = {**posterior.metadata, "latent_shape": list(z.shape[1:])}
    return Posterior(images.cpu(), posterior.weights, diagnostics, metadata)
