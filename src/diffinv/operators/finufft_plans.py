r"""Cached finufft plans for a fixed set of non-uniform points (shared by MRI and VLBI).

A finufft call without a plan re-sorts the points and re-allocates the fine grid every time;
at small sizes (64 x 64 images, a few thousand points) that set-up costs more than the
transform.  :class:`PlanCache` keeps one ``finufft.Plan`` per ``(type, n_trans, dtype,
threads)`` with the points already set, so repeated calls on the same coverage only execute.

Type 2 (uniform modes -> points) uses ``isign = -1`` and type 1 (points -> modes)
``isign = +1``; with the same kernel the type 1 is the exact adjoint of the type 2
(Barnett, Magland & af Klinteberg 2019, SIAM J. Sci. Comput. 41:C479).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..extras import require
from ..threads import get_threads, threads_for

__all__ = ["PlanCache", "default_eps"]


def default_eps(dtype: torch.dtype) -> float:
    """finufft accuracy used when none is given: 1e-6 in single, 1e-12 in double precision."""
    return 1e-6 if dtype in (torch.float32, torch.complex64) else 1e-12


class PlanCache:
    """finufft plans on fixed points, built on first use and reused.

    Parameters
    ----------
    points : tuple of numpy.ndarray
        ``(x0, x1)`` float64 ``(M,)`` coordinates in radians per sample, ``x0`` paired with the
        first (row) mode axis, ``x1`` with the second.
    shape : tuple of int
        Mode grid ``(N0, N1)``.
    eps : float, optional
        Requested relative accuracy; default :func:`default_eps` of the data's dtype.
    max_plans : int
        Plans kept at most (the cache is cleared beyond it).
    """

    def __init__(
        self,
        points: tuple[np.ndarray, np.ndarray],
        shape: tuple[int, int],
        eps: float | None = None,
        max_plans: int = 8,
    ):
        self.points = tuple(np.ascontiguousarray(p, dtype=np.float64) for p in points)
        self.shape = (int(shape[0]), int(shape[1]))
        self.eps = eps
        self.max_plans = int(max_plans)
        self._plans: dict = {}
        self._recent: dict = {}  # (kind, n_trans, single, torch threads) -> plan
        self._pts_single: tuple[np.ndarray, np.ndarray] | None = None

    def threads(self, n_trans: int) -> int:
        """finufft threads for ``n_trans`` transforms (serial for small work)."""
        n_modes = self.shape[0] * self.shape[1]
        work = n_trans * (64 * self.points[0].shape[0] + 8 * n_modes * math.log2(4 * n_modes))
        return threads_for(work)

    def plan(self, kind: int, n_trans: int, dtype: torch.dtype):
        """The type-``kind`` plan for ``n_trans`` vectors of complex ``dtype`` (points set).

        A repeated call with the same arguments and the same torch thread count is one dict
        lookup (no import, no thread arithmetic): at 64 x 64 with a few thousand points the
        transform itself takes about a millisecond.
        """
        single = dtype in (torch.complex64, torch.float32)
        fast_key = (kind, n_trans, single, get_threads())
        plan = self._recent.get(fast_key)
        if plan is not None:
            return plan
        finufft = require("finufft", "mri", "NUFFT plans (MRI or VLBI)")
        nthreads = self.threads(n_trans)
        key = (kind, n_trans, single, nthreads)
        plan = self._plans.get(key)
        if plan is None:
            eps = self.eps if self.eps is not None else default_eps(dtype)
            if single:
                if self._pts_single is None:
                    self._pts_single = tuple(p.astype(np.float32) for p in self.points)
                pts = self._pts_single
            else:
                pts = self.points
            plan = finufft.Plan(
                kind,
                self.shape,
                n_trans=n_trans,
                eps=eps,
                isign=-1 if kind == 2 else 1,
                dtype="complex64" if single else "complex128",
                nthreads=nthreads,
            )
            plan.setpts(*pts)
            plan._diffinv_pts = pts  # finufft keeps pointers: keep the arrays alive
            if len(self._plans) >= self.max_plans:
                self._plans.clear()
                self._recent.clear()
            self._plans[key] = plan
        if len(self._recent) >= 4 * self.max_plans:
            self._recent.clear()
        self._recent[fast_key] = plan
        return plan

    def type2(self, modes: np.ndarray) -> np.ndarray:
        """``(B, N0, N1)`` complex modes -> ``(B, M)`` values at the points."""
        plan = self.plan(
            2, modes.shape[0], torch.complex64 if modes.dtype == np.complex64 else torch.complex128
        )
        return plan.execute(modes).reshape(modes.shape[0], -1)

    def type1(self, values: np.ndarray) -> np.ndarray:
        """``(B, M)`` complex values at the points -> ``(B, N0, N1)`` complex modes."""
        plan = self.plan(
            1,
            values.shape[0],
            torch.complex64 if values.dtype == np.complex64 else torch.complex128,
        )
        return plan.execute(values).reshape(values.shape[0], *self.shape)
