"""Posterior samplers (one algorithm per module) and the :class:`Posterior` result.

Importing this package registers the built-in solvers; :func:`available_solvers` lists them.
"""

from . import dps, smc  # noqa: F401  (register "dps", "smc")
from .posterior import Posterior, load_posterior, weighted_quantile
from .registry import (
    SolverOutput,
    available_solvers,
    get_solver,
    register_solver,
    solver_options,
)
from .schedules import geometric_sigmas, get_schedule, karras_sigmas, linear_sigmas

__all__ = [
    "Posterior",
    "SolverOutput",
    "available_solvers",
    "geometric_sigmas",
    "get_schedule",
    "get_solver",
    "karras_sigmas",
    "linear_sigmas",
    "load_posterior",
    "register_solver",
    "solver_options",
    "weighted_quantile",
]
