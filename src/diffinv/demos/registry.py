"""Registry of built-in demonstration problems for ``diffinv reconstruct --problem NAME``.

A demo builder is a function ``build(seed: int, **kw) -> Demo`` registered with
:func:`register_demo`; domain modules register their own (CT, MRI, VLBI, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..operators.problem import InverseProblem
from ..posterior import Posterior
from ..sampling import push_forward

__all__ = ["DEFAULT_SAMPLES", "Demo", "LatentImages", "image_space", "plane_images",
           "register_demo", "get_demo", "available_demos", "accepts_prior", "samples_for"]

#: posterior samples (chains, particles) of ``diffinv reconstruct`` without ``--samples``,
#: unless the problem's ``solver_defaults`` name another count for its default solver
DEFAULT_SAMPLES = 8


@dataclass(frozen=True)
class LatentImages:
    """Unknowns that are a latent vector ``z``, imaged by ``x = field(z)``.

    Attributes
    ----------
    field : callable
        ``(n, *latent_shape) -> (n, *image_shape)``, e.g. a
        :class:`~diffinv.operators.LogNormalField` on white noise.
    image_problem : InverseProblem
        The same data on images (``image_problem.forward(field(z))`` is ``forward(z)``).
    physical_range : (float, float), optional
        Physical bounds of an image pixel (the latent ``z`` has none).
    """

    field: Callable[[torch.Tensor], torch.Tensor]
    image_problem: InverseProblem
    physical_range: tuple[float, float] | None = None


@dataclass
class Demo:
    """A ready-to-solve problem.

    Attributes
    ----------
    problem : InverseProblem
    prior : callable
        Denoiser prior in the problem's image frame.
    x_true : torch.Tensor or None
        Ground truth ``(1, *image_shape)`` when known (synthetic data).
    description : str
        One line saying what is reconstructed, from what, in which units.
    solver_defaults : dict
        Solver, steps, options and (optionally) the number of samples that work well on
        this problem.
    to_image : callable
        Maps a batch ``(n, *image_shape)`` to real displayable images ``(n, H, W)``.
    metadata : dict
        Units, field of view, pixel size, etc. (stored with the posterior).
    latent : LatentImages or None
        Set when ``problem`` and ``prior`` are on a latent vector rather than on images
        (:func:`image_space` turns its posterior into one over images).
    """

    problem: InverseProblem
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    x_true: torch.Tensor | None
    description: str
    solver_defaults: dict[str, Any] = field(default_factory=dict)
    to_image: Callable[[torch.Tensor], torch.Tensor] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    latent: LatentImages | None = None


def plane_images(x: torch.Tensor) -> torch.Tensor:
    """``(n, ..., H, W) -> (n, H, W)``: the display map of a demo without ``to_image``."""
    return x.reshape(x.shape[0], *x.shape[-2:])


def samples_for(demo: Demo, solver: str, requested: int | None) -> int:
    """The sample count of a run: ``requested``, else the problem's own count for its default
    solver (``solver_defaults["samples"]``), else :data:`DEFAULT_SAMPLES`."""
    if requested is not None:
        return int(requested)
    defaults = demo.solver_defaults
    if solver == defaults.get("solver") and "samples" in defaults:
        return int(defaults["samples"])
    return DEFAULT_SAMPLES


def image_space(posterior: Posterior, demo: Demo) -> tuple[Posterior, Demo]:
    """The posterior and problem over images, for reporting a run on ``demo``.

    Unchanged when ``demo.latent`` is ``None``; otherwise the samples are mapped through the
    field (:func:`diffinv.sampling.push_forward`: summaries, reduced chi^2 and warnings on the
    images) and the returned demo holds the image problem, the image's physical range in
    ``metadata`` and ``to_image`` for ``(n, 1, H, W)`` images.
    """
    latent = demo.latent
    if latent is None:
        return posterior, demo
    units = str(demo.metadata.get("units", ""))
    images = push_forward(posterior, latent.field, latent.image_problem, latent.physical_range,
                          units)
    metadata = dict(demo.metadata)
    if latent.physical_range is not None:
        metadata["physical_range"] = latent.physical_range
    truth = demo.x_true
    if truth is not None:
        with torch.no_grad():
            truth = latent.field(truth.detach().to(latent.image_problem.y.device)).cpu()
    return images, replace(demo, problem=latent.image_problem, x_true=truth, latent=None,
                           to_image=plane_images,
                           metadata=metadata)


_DEMOS: dict[str, Callable[..., Demo]] = {}


def register_demo(name: str) -> Callable:
    """Decorator registering a demo builder under ``name``."""

    def deco(fn: Callable[..., Demo]) -> Callable[..., Demo]:
        _DEMOS[name] = fn
        return fn

    return deco


def available_demos() -> list[str]:
    """Names of the registered demos."""
    return sorted(_DEMOS)


def get_demo(name: str) -> Callable[..., Demo]:
    """The builder registered as ``name``; ``ValueError`` listing the choices if unknown."""
    try:
        return _DEMOS[name]
    except KeyError:
        raise ValueError(
            f"problem: unknown problem {name!r}; expected one of {available_demos()}"
        ) from None


def accepts_prior(name: str) -> bool:
    """Whether the demo ``name`` takes a ``prior`` argument (a name, path or denoiser)."""
    return "prior" in inspect.signature(get_demo(name)).parameters
