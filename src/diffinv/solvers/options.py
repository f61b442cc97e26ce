"""Validation of the data-step options shared by DAPS, PiGDM, DiffPIR (and SMC's TDS)."""

from __future__ import annotations

from ..validation import nonnegative_float, optional, positive_float, positive_int

__all__ = ["check_data_step_options", "check_lipschitz"]


def check_lipschitz(lipschitz) -> None:
    """Raise ``ValueError`` unless ``lipschitz`` is ``None`` or a non-negative finite number."""
    optional(nonnegative_float, "lipschitz", lipschitz)


def check_data_step_options(lipschitz, cg_tol, cg_max_iter) -> None:
    """Raise ``ValueError`` naming the option unless all three are valid.

    ``lipschitz``: ``None`` or a non-negative finite number; ``cg_tol``: ``None`` or a
    positive number; ``cg_max_iter``: a positive integer.
    """
    check_lipschitz(lipschitz)
    positive_int("cg_max_iter", cg_max_iter)
    optional(positive_float, "cg_tol", cg_tol)
