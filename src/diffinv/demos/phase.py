"""Phase-retrieval demo: a natural-image patch from coded diffraction photon counts.

``phase-retrieval-cdp``: a held-out 16x16 grey-level patch (values in [0, 1], unitless
transmission) is illuminated through ``n_masks`` random unit-modulus phase masks and the
far-field intensities ``|F (d_l x)|^2`` are recorded as Poisson photon counts (data in
intensity units, ``photons`` expected counts per diffraction pattern).

The prior is swappable (``prior=`` argument): by default (``"auto"``) the learned
natural-patch diffusion prior ``diffinv.priors.load("natural-patches")`` when the installed
diffinv has it and it accepts the image size (it is fully convolutional, trained on 32x32
patches, so the default 16x16 problem uses it too), otherwise an analytic
:class:`~diffinv.priors.GaussianPrior` whose mean and covariance are fitted to training
patches (disjoint source images; ``prior="gaussian"``).  At 16x16 the learned prior's
posterior mean is 0.3-0.7 dB better than the Gaussian's on held-out patches (DAPS defaults;
``benchmarks/README.md``, "Built-in problems at 128x128 (issue 14)").  How DAPS with the
learned prior compares with Wirtinger flow and HIO on held-out patches:
``benchmarks/README.md``, "Built-in problems" (``benchmarks/phase_retrieval.py --size 32``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

from ..datasets.patches import natural_patches
from ..operators import InverseProblem
from ..operators.phase_retrieval import CodedDiffraction, PhotonNoise, flux_for_photons
from ..priors import GaussianPrior
from ..priors.base import shape_mismatch
from .prior_choice import prior_for_problem
from .registry import Demo, register_demo

__all__ = ["fitted_gaussian_patch_prior", "learned_patch_prior", "patch_prior", "build_cdp"]

LEARNED_PRIOR_NAME = "natural-patches"


@cache
def _fit(patch_size: int, n_train: int, seed: int, ridge: float) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    patches = natural_patches(n_train, patch_size, g, split="train", dtype=torch.float64)
    flat = patches.reshape(n_train, -1)
    mean = flat.mean(0)
    centred = flat - mean
    cov = centred.T @ centred / (n_train - 1)
    cov = cov + ridge * float(torch.diagonal(cov).mean()) * torch.eye(flat.shape[1],
                                                                       dtype=torch.float64)
    return mean.reshape(1, patch_size, patch_size), cov


def fitted_gaussian_patch_prior(
    patch_size: int = 16, n_train: int = 20000, seed: int = 0, ridge: float = 1e-3
) -> GaussianPrior:
    """Gaussian prior with the empirical mean and covariance of training patches.

    ``ridge`` adds ``ridge * mean variance`` to the diagonal (keeps the covariance positive
    definite).  Fits are cached per argument set.  Event shape ``(1, P, P)``.
    """
    mean, cov = _fit(int(patch_size), int(n_train), int(seed), float(ridge))
    return GaussianPrior(mean, cov)


def learned_patch_prior(patch_size: int = 16) -> Callable | None:
    """HOOK for a learned prior: ``diffinv.priors.load("natural-patches")`` if it exists.

    Returns ``None`` when diffinv has no ``priors.load``, no such prior is shipped, or it
    does not accept ``(1, patch_size, patch_size)`` images
    (:func:`diffinv.priors.base.shape_mismatch`: a size-agnostic prior accepts any size
    within its limits).
    """
    from .. import priors

    load = getattr(priors, "load", None)
    if load is None:
        return None
    try:
        prior = load(LEARNED_PRIOR_NAME)
    except (ValueError, KeyError, FileNotFoundError, ImportError):
        return None
    if shape_mismatch(prior, (1, patch_size, patch_size)) is not None:
        return None
    return prior


def patch_prior(kind: str | Callable = "auto", patch_size: int = 16) -> tuple[Callable, str]:
    """Resolve a prior choice to ``(prior, description)``.

    ``kind``: ``"auto"`` (learned if available, else fitted Gaussian), ``"learned"``
    (error if unavailable), ``"gaussian"``, a shipped prior's name or a checkpoint path
    (checked for channels, size limits and units), or any denoiser callable ``D(x, sigma)``.
    """
    if callable(kind):
        return kind, getattr(kind, "__name__", type(kind).__name__)
    if not isinstance(kind, str) or not kind:
        raise ValueError(
            f"prior: expected 'auto', 'learned', 'gaussian', a shipped prior's name, a "
            f"checkpoint path or a callable, got {kind!r}"
        )
    if kind not in ("auto", "learned", "gaussian"):
        # a shipped prior's name or a checkpoint path, checked against the problem
        prior = prior_for_problem(kind, "phase-retrieval-cdp", (1, patch_size, patch_size),
                                  ("grey", "transmission"), "grey-level transmission in [0, 1]")
        return prior, f"{kind!r}"
    if kind in ("auto", "learned"):
        learned = learned_patch_prior(patch_size)
        if learned is not None:
            return learned, f"learned diffusion prior {LEARNED_PRIOR_NAME!r}"
        if kind == "learned":
            raise ValueError(
                f"prior: no learned prior {LEARNED_PRIOR_NAME!r} with event shape "
                f"(1, {patch_size}, {patch_size}) is available in diffinv.priors"
            )
    return fitted_gaussian_patch_prior(patch_size), "Gaussian fitted to training patches"


@register_demo("phase-retrieval-cdp")
def build_cdp(
    seed: int = 0,
    size: int = 16,
    n_masks: int = 4,
    photons: float = 1e4,
    prior: str | Callable = "auto",
) -> Demo:
    """Natural-image ``size`` x ``size`` patch from ``n_masks`` coded-diffraction patterns.

    ``seed`` fixes the held-out patch, the masks and the photon noise; ``photons`` is the
    expected count per pattern.  ``prior="auto"`` uses the learned natural-patches prior
    (the Gaussian fitted to training patches if it is not installed).
    """
    g = torch.Generator().manual_seed(seed)
    x_true = natural_patches(1, size, g, split="test", min_std=0.1, dtype=torch.float32)
    op = CodedDiffraction(size, n_masks, seed=seed)
    clean = op(x_true)
    flux = flux_for_photons(clean, photons)
    noise = PhotonNoise(flux)
    y = noise.sample(clean, generator=g)
    problem = InverseProblem(op, noise, y)
    den, prior_desc = patch_prior(prior, size)
    return Demo(
        problem=problem,
        prior=den,
        x_true=x_true,
        description=(
            f"{size}x{size} held-out natural-image patch (unitless, [0, 1]) from {n_masks} "
            f"coded diffraction patterns with Poisson noise, {photons:g} photons per pattern "
            f"(flux {flux:.3g} photons per unit intensity); prior: {prior_desc}"
        ),
        # DAPS with Langevin data steps (benchmarks/README.md, "Built-in problems").  The
        # step size uses
        # the likelihood curvature, measured ~0.22 * photons at the truth (4 masks, 16x16);
        # twice that keeps Langevin stable away from it.  The same setting serves size=32
        # with the learned prior (benchmarks/phase_retrieval.py --size 32)
        solver_defaults={
            "solver": "daps",
            "steps": 100,
            "options": {"ode_steps": 1, "langevin_steps": 20, "lipschitz": 0.4 * photons},
        },
        to_image=lambda x: x[:, 0],
        metadata={
            "units": "dimensionless transmission",
            "operator": "CodedDiffraction",
            "n_masks": n_masks,
            "photons_per_pattern": photons,
            "flux": flux,
            "prior": prior_desc,
            "ambiguities": "global sign only (masks break translation and twin)",
        },
    )
