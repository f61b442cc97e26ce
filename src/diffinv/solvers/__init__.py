"""Posterior samplers (one algorithm per module) and the :class:`Posterior` result.

Importing this package registers the built-in solvers; :func:`available_solvers` lists them.
"""

from . import (
    daps,  # noqa: F401  (registers "daps")
    ddrm,  # noqa: F401  (registers "ddrm")
    diffpir,  # noqa: F401  (registers "diffpir")
    dps,  # noqa: F401  (registers "dps")
    pigdm,  # noqa: F401  (registers "pigdm")
)
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
