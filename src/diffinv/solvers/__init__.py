"""Posterior samplers (one algorithm per module) and the :class:`Posterior` result.

Importing this package registers the built-in solvers; :func:`available_solvers` lists them.
"""

# importing a solver module registers it under its name
from . import daps, ddrm, diffpir, dps, pigdm, smc  # noqa: F401
from .calibration import Calibration, calibrate, load_calibration
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
    "Calibration",
    "Posterior",
    "SolverOutput",
    "available_solvers",
    "calibrate",
    "geometric_sigmas",
    "get_schedule",
    "get_solver",
    "karras_sigmas",
    "linear_sigmas",
    "load_calibration",
    "load_posterior",
    "register_solver",
    "solver_options",
    "weighted_quantile",
]
