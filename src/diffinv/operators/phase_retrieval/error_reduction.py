r"""Error reduction (Gerchberg & Saxton 1972; Fienup, Appl. Opt. 21, 2758, 1982).

Alternating projections for oversampled Fourier phase retrieval with a support:

.. math:: z_{k+1} = P_S P_M z_k

The Fourier error ``|| |F_c P_S z| - m ||`` never increases (Fienup 1982, sec. IV), but the
iteration stagnates in local minima; it is mostly used to polish the output of
:func:`~diffinv.operators.phase_retrieval.hio` or :func:`~diffinv.operators.phase_retrieval.raar`.
"""

from __future__ import annotations

import torch

from .fourier import FourierPhaseRetrieval
from .projections import FourierProjections, PhaseRetrievalResult, check_iterations

__all__ = ["error_reduction"]


def error_reduction(
    op: FourierPhaseRetrieval,
    y: torch.Tensor,
    n_iter: int = 200,
    *,
    support: torch.Tensor | None = None,
    real: bool = True,
    nonnegative: bool = True,
    x0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PhaseRetrievalResult:
    """Run error reduction.

    Parameters
    ----------
    op : FourierPhaseRetrieval
        Forward model (intensity or amplitude data).
    y : torch.Tensor
        ``(batch, C, M_h, M_w)`` data; every batch item is solved independently (repeat one
        pattern along the batch for random restarts).
    n_iter : int
        Iterations.
    support : torch.Tensor, optional
        Boolean support on the padded grid (default: the object window of ``op``).
    real, nonnegative : bool
        Object value constraints (default: real, non-negative images).
    x0 : torch.Tensor, optional
        Start: an object ``(batch, C, H, W)`` or a padded-grid iterate; default random
        Fourier phases (drawn with ``generator``, which must live on ``y``'s device).

    Returns
    -------
    PhaseRetrievalResult
        ``errors[k]`` is the relative Fourier error of ``P_S z_k`` after iteration ``k``.
    """
    check_iterations(n_iter)
    proj = FourierProjections(op, y, support, real, nonnegative)
    z = proj.initial(x0, generator)
    errors = []
    for _ in range(n_iter):
        z = proj.object(proj.magnitude(z))
        errors.append(proj.error(z))
    return proj.result(z, errors, {"algorithm": "error_reduction", "n_iter": n_iter})
