"""Solver registry: name -> sampler function, used by :func:`diffinv.sample` and the CLI.

A solver is a function

``fn(problem, prior, ctx, **options) -> SolverOutput``

where ``ctx`` is the :class:`~diffinv.solvers.context.RunContext` of the run and the
solver-specific options are keyword-only parameters with defaults (so unknown options can be
rejected by name).  Register one with :func:`register_solver`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "SolverOutput",
    "register_solver",
    "get_solver",
    "available_solvers",
    "solver_options",
    "check_state",
]

_SOLVERS: dict[str, Callable[..., SolverOutput]] = {}


@dataclass
class SolverOutput:
    """What a solver returns to :func:`diffinv.sample`.

    Attributes
    ----------
    samples : torch.Tensor
        ``(n, *image_shape)`` final states.
    nfe : int
        Number of denoiser evaluations per chain (one batched call over all chains counts
        once), the cost measure samplers are compared at.
    weights : torch.Tensor, optional
        Importance weights for weighted particle methods.
    diagnostics : dict
        Solver-specific entries (step sizes, ESS per step, ...).
    """

    samples: torch.Tensor
    nfe: int
    weights: torch.Tensor | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


def register_solver(name: str) -> Callable:
    """Decorator registering a solver function under ``name``."""

    def deco(fn: Callable) -> Callable:
        params = list(inspect.signature(fn).parameters.values())
        positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        if len(positional) != 3:
            raise TypeError(
                f"fn: a solver takes (problem, prior, ctx) and keyword-only options; "
                f"{fn.__name__} takes {[p.name for p in positional]}"
            )
        if name in _SOLVERS and _SOLVERS[name] is not fn:
            raise ValueError(f"name: a solver named {name!r} is already registered")
        _SOLVERS[name] = fn
        return fn

    return deco


def available_solvers() -> list[str]:
    """Names of the registered solvers."""
    return sorted(_SOLVERS)


def get_solver(name: str) -> Callable[..., SolverOutput]:
    """Return the solver function registered as ``name``; ``ValueError`` if unknown."""
    try:
        return _SOLVERS[name]
    except KeyError:
        raise ValueError(
            f"solver: unknown solver {name!r}; expected one of {available_solvers()}"
        ) from None


def solver_options(name: str) -> dict[str, Any]:
    """The solver-specific options of ``name`` with their defaults."""
    sig = inspect.signature(get_solver(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def check_state(x: torch.Tensor, step: int, what: str = "state") -> None:
    """Raise ``FloatingPointError`` naming the step if ``x`` holds NaN or Inf."""
    if not bool(torch.isfinite(x).all()):
        raise FloatingPointError(
            f"{what} became NaN or Inf at step {step}; reduce the step size or check the "
            "prior and the data scaling"
        )
