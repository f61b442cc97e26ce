r"""Relaxed averaged alternating reflections (Luke, Inverse Problems 21, 37, 2005).

With reflections ``R_M = 2 P_M - I`` and ``R_S = 2 P_S - I``:

.. math:: z_{k+1} = \tfrac{\beta}{2}\,(R_S R_M + I)\, z_k + (1 - \beta)\, P_M z_k

``beta = 1`` is the Douglas-Rachford / averaged alternating reflections iteration and
``beta -> 0`` approaches error reduction; Luke recommends 0.75--0.9 (default 0.9).
On small noiseless problems it converges more slowly than HIO; ``beta = 1``
(Douglas-Rachford) is closest to HIO.
The returned object is ``P_S P_M`` of the final iterate (the "shadow" sequence).
"""

from __future__ import annotations

import torch

from .fourier import FourierPhaseRetrieval
from .projections import FourierProjections, PhaseRetrievalResult, check_beta, check_iterations

__all__ = ["raar"]


def raar(
    op: FourierPhaseRetrieval,
    y: torch.Tensor,
    n_iter: int = 500,
    *,
    beta: float = 0.9,
    support: torch.Tensor | None = None,
    real: bool = True,
    nonnegative: bool = True,
    x0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PhaseRetrievalResult:
    """Run RAAR; parameters as :func:`~diffinv.operators.phase_retrieval.error_reduction`
    plus the relaxation ``beta`` in (0, 1].

    Returns
    -------
    PhaseRetrievalResult
        ``errors[k]`` is the relative Fourier error of ``P_S P_M z_k``; ``z`` is the last
        RAAR iterate (not projected), ``x`` the cropped ``P_S P_M z``.
    """
    check_iterations(n_iter)
    check_beta(beta)
    proj = FourierProjections(op, y, support, real, nonnegative)
    z = proj.initial(x0, generator)
    errors = []
    for _ in range(n_iter):
        pm = proj.magnitude(z)
        rm = 2 * pm - z
        rs_rm = 2 * proj.object(rm) - rm
        z = 0.5 * beta * (rs_rm + z) + (1 - beta) * pm
        errors.append(proj.error(proj.magnitude(z)))
    out = proj.result(proj.magnitude(z), errors, {"algorithm": "raar", "n_iter": n_iter,
                                                   "beta": beta})
    out.z = z
    return out
