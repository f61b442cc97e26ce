"""Posterior samplers, one algorithm per module (SMC as the :mod:`.smc` subpackage).

Importing this package registers the built-in solvers; :func:`available_solvers` lists them.
A solver receives the problem, the prior and a :class:`~diffinv.solvers.context.RunContext`
from :func:`diffinv.sample` and returns a :class:`SolverOutput`.
"""

# importing a solver module registers it under its name
from . import daps, ddrm, diffpir, dps, pigdm, smc  # noqa: F401
from .registry import (
    SolverOutput,
    available_solvers,
    get_solver,
    register_solver,
    solver_options,
)

__all__ = [
    "SolverOutput",
    "available_solvers",
    "get_solver",
    "register_solver",
    "solver_options",
]
