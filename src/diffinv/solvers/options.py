"""Validation of the data-step options shared by DAPS, PiGDM, DiffPIR (and SMC's TDS)."""

from __future__ import annotations

import math

__all__ = ["check_data_step_options", "check_lipschitz"]


def check_lipschitz(lipschitz) -> None:
    """Raise ``ValueError`` unless ``lipschitz`` is ``None`` or a non-negative finite number."""
    if lipschitz is not None and not (
        isinstance(lipschitz, (int, float)) and lipschitz >= 0 and math.isfinite(lipschitz)
    ):
        raise ValueError(f"lipschitz: expected a non-negative finite number, got {lipschitz!r}")


def check_data_step_options(lipschitz, cg_tol, cg_max_iter) -> None:
    """Raise ``ValueError`` naming the option unless all three are valid.

    ``lipschitz``: ``None`` or a non-negative finite number; ``cg_tol``: ``None`` or a
    positive number; ``cg_max_iter``: a positive integer.
    """
    check_lipschitz(lipschitz)
    if isinstance(cg_max_iter, bool) or not isinstance(cg_max_iter, int) or cg_max_iter < 1:
        raise ValueError(f"cg_max_iter: expected a positive integer, got {cg_max_iter!r}")
    if cg_tol is not None and not (isinstance(cg_tol, (int, float)) and cg_tol > 0):
        raise ValueError(f"cg_tol: expected a positive number, got {cg_tol!r}")
