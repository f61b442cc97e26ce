r"""Hybrid input-output (Fienup, Appl. Opt. 21, 2758, 1982).

With ``z' = P_M z_k`` and ``gamma`` the set of pixels where ``z'`` satisfies the object
constraints (inside the support, and non-negative when required):

.. math::

    z_{k+1}(r) = \begin{cases} c(z'(r)) & r \in \gamma \\
                               z_k(r) - \beta\, z'(r) & r \notin \gamma \end{cases}

(``c`` = the value constraint, e.g. the real part for real objects).  The returned object is
``P_S`` of the final iterate.  ``beta`` is typically 0.7--0.9.
"""

from __future__ import annotations

import torch

from .fourier import FourierPhaseRetrieval
from .projections import FourierProjections, PhaseRetrievalResult, check_beta, check_iterations

__all__ = ["hio"]


def hio(
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
    """Run HIO; parameters as :func:`~diffinv.operators.phase_retrieval.error_reduction`
    plus the feedback ``beta`` in (0, 1].

    Returns
    -------
    PhaseRetrievalResult
        ``errors[k]`` is the relative Fourier error of ``P_S z_k``.
    """
    check_iterations(n_iter)
    check_beta(beta)
    proj = FourierProjections(op, y, support, real, nonnegative)
    z = proj.initial(x0, generator)
    errors = []
    for _ in range(n_iter):
        zp = proj.magnitude(z)
        if proj.real:
            zp = zp.real.to(zp.dtype)
        z = torch.where(proj.feasible(zp), proj.constrain(zp), z - beta * zp)
        errors.append(proj.error(z))
    return proj.result(z, errors, {"algorithm": "hio", "n_iter": n_iter, "beta": beta})
