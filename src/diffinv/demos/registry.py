"""Registry of built-in demonstration problems for ``diffinv reconstruct --problem NAME``.

A demo builder is a function ``build(seed: int, **kw) -> Demo`` registered with
:func:`register_demo`; domain modules register their own (CT, MRI, VLBI, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..operators.problem import InverseProblem

__all__ = ["Demo", "register_demo", "get_demo", "available_demos", "accepts_prior"]


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
        Solver, steps and options that work well on this problem.
    to_image : callable
        Maps a batch ``(n, *image_shape)`` to real displayable images ``(n, H, W)``.
    metadata : dict
        Units, field of view, pixel size, etc. (stored with the posterior).
    """

    problem: InverseProblem
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    x_true: torch.Tensor | None
    description: str
    solver_defaults: dict[str, Any] = field(default_factory=dict)
    to_image: Callable[[torch.Tensor], torch.Tensor] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


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
