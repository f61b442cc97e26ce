r"""A linear-Gaussian likelihood in the coordinates of the whitened operator's SVD (MCGdiff).

Whitening and the SVD ``Gamma^{-1/2} A = U S V^T`` (rank ``r``) turn ``y = A x + n``,
``n ~ N(0, Gamma)`` into independent observations ``ybar_i = xbar_i + rho_i eps_i`` of the
coordinates ``xbar = V^T x``, ``i < r`` (:mod:`diffinv.solvers.smc.mcgdiff`).  ``V`` comes
from :func:`~diffinv.solvers.smc.factorisation.factorise` in one of two representations:

* **full basis**: ``V`` ``(n, n)`` orthogonal (the structured factorisations, and the
  unstructured ones of operators with at least as many data rows as unknowns);
* **economy**: only ``V_r`` ``(n, r)`` (unstructured operators with fewer data rows than
  unknowns, as sparse-view CT: ``"row-gram"`` or ``"economy"``).  The likelihood, the
  potentials and the proposal's observed part only involve ``V_r``; the unobserved
  complement is only ever moved by the model's isotropic kernel, so
  :meth:`SVDLikelihood.image` draws it with the projector ``P = I - V_r V_r^T``:
  ``P mean + sqrt(v) P w`` with ``w ~ N(0, I_n)``.  Since ``P w ~ N(0, P)`` and
  ``P = V_perp V_perp^T``, this has exactly the law of the full basis'
  ``V_perp (V_perp^T mean + sqrt(v) z)``, ``z ~ N(0, I_{n - r})``: the particles follow the
  same distribution, at ``O(N n r)`` per step instead of ``O(N n^2)``, and the set-up needs
  no ``n x n`` basis (``O(m^2 n + m^3)`` time, ``O(m n)`` memory).

Structured operators (a diagonal or block-circulant normal matrix: masks, inpainting,
masked unitary Fourier sampling, periodic convolutions) are recognised and factorised through
the operator itself (:class:`~diffinv.operators.linear_gaussian.WhitenedSystem`,
:func:`~diffinv.solvers.smc.factorisation.structured`): no dense matrix, and an implicit
basis (:mod:`~diffinv.solvers.smc.bases`) applied by indexing or FFTs.  For the others the
dense matrix is built by blocks of columns
(:meth:`~diffinv.operators.base.LinearOperator.to_matrix`: no ``n x n`` identity) and the
set-up is refused up front, with its estimated memory in the message, when it does not fit
in the memory available (:func:`~diffinv.solvers.smc.factorisation
.check_setup_memory`); its wall time and factorisation are reported in the diagnostics.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ...memory import available_memory
from ...operators.linear_gaussian import WhitenedSystem, real_linear_system
from ...operators.problem import InverseProblem
from .bases import DenseBasis, FourierBasis, PermutationBasis
from .factorisation import (
    ECONOMY_KINDS,
    STRUCTURES,
    check_setup_memory,
    factorise,
    structured,
    unstructured_kind,
)

__all__ = ["SVDLikelihood", "data_rows"]


def data_rows(problem: InverseProblem) -> int:
    """Real data rows of the linear system (an upper bound: twice the entries if complex)."""
    y = problem.y[0]
    return y.numel() * (2 if y.is_complex() else 1)


def _cpu_normal(system: WhitenedSystem):
    """``z -> A_w^T A_w z`` for float64 CPU vectors, whatever the operator's device."""
    device = system.yw.device
    return lambda z: system.normal(z.to(device)).cpu()


@dataclass
class SVDLikelihood:
    """A linear-Gaussian likelihood in the coordinates of the whitened operator's SVD.

    Attributes
    ----------
    basis : DenseBasis | PermutationBasis | FourierBasis
        ``V`` (:mod:`~diffinv.solvers.smc.bases`): ``(n, n)`` orthogonal (full basis,
        implicit for the structured factorisations; ``xbar = V^T x``) or ``(n, r)``
        orthonormal columns ``V_r`` (economy; ``xbar`` is then the ``r`` observed
        coordinates only), see the module docstring.
    ybar : torch.Tensor
        ``(r,)`` float64 observations of the first ``r`` coordinates.
    rho2 : torch.Tensor
        ``(r,)`` float64 noise variances of ``ybar``.
    log_const : float
        ``log p(y | x) - sum_i log N(ybar_i; xbar_i, rho2_i)`` (independent of ``x``).
    factorisation : str
        How ``V`` was found: ``"diagonal"``, ``"circulant"`` (from the operator's structure),
        ``"gram"`` (eigendecomposition of ``A_w^T A_w``), ``"dense"`` (SVD), or the economy
        ``"row-gram"`` (eigendecomposition of ``A_w A_w^T``) and ``"economy"`` (SVD without
        the complement) (:mod:`.factorisation`).
    setup_seconds : float
        Wall time of :meth:`from_problem` (factorisation, and the dense matrix if any).
    """

    basis: DenseBasis | PermutationBasis | FourierBasis
    ybar: torch.Tensor
    rho2: torch.Tensor
    log_const: float
    factorisation: str = "dense"
    setup_seconds: float = 0.0

    def setup_diagnostics(self) -> dict:
        """``factorisation`` and ``setup_seconds`` for a solver's diagnostics."""
        return {"factorisation": self.factorisation, "setup_seconds": self.setup_seconds}

    @property
    def rank(self) -> int:
        """Number of observed coordinates."""
        return int(self.ybar.numel())

    @property
    def complete(self) -> bool:
        """``True`` for a full basis ``V`` ``(n, n)``, ``False`` for the economy ``V_r``."""
        return self.basis.complete

    @classmethod
    def from_problem(cls, problem, image_shape: tuple[int, ...], rtol: float = 1e-10,
                     factorisation: str = "auto", memory_limit: int | None = None):
        """Build from a linear-Gaussian :class:`InverseProblem` (float64).

        ``V`` comes from the operator's structure where it has one (diagonal or circulant
        normal matrix, verified by random probes; no dense matrix is built), else from an
        economy factorisation (fewer data rows than unknowns) or a dense SVD
        (:func:`.factorisation.factorise`).  ``memory_limit`` (bytes; default: the memory
        available on ``problem.y``'s device, :func:`diffinv.memory.available_memory`) bounds
        the estimated set-up memory: above it a ``ValueError`` states the estimate, before
        anything large is allocated.
        """
        start = time.perf_counter()
        if not problem.is_linear_gaussian:
            raise ValueError(
                "method: 'mcgdiff' needs a LinearOperator with GaussianNoise; use method='tds'"
            )
        n = math.prod(image_shape)
        limit = available_memory(problem.y.device) if memory_limit is None else memory_limit
        # up front, from the data size alone (the least any factorisation can need)
        check_setup_memory(data_rows(problem), n, factorisation, limit)
        system = WhitenedSystem.from_problem(problem, image_shape)
        out = None
        if factorisation == "auto" or factorisation in STRUCTURES:
            out = structured(_cpu_normal(system), image_shape, rtol, factorisation)
        if out is None:
            # before the dense matrix is built; factorise would check the same (m, n, kind)
            check_setup_memory(system.m, n, unstructured_kind(system.m, n)
                               if factorisation == "auto" else factorisation, limit)
            a, _, var = real_linear_system(problem, image_shape)
            aw = a / var.sqrt()[:, None]
            del a
            out = factorise(aw, image_shape, rtol, factorisation, structures=False)
            del aw
        basis, s, r, kind = out
        if r == 0:
            raise ValueError("problem: the operator is zero; there is nothing to condition on")
        if kind in ECONOMY_KINDS:
            basis = DenseBasis(basis.v[:, :r].contiguous())
        yw = system.yw
        basis, s = basis.to(yw.device), s.to(yw.device)
        back = system.adjoint(yw[None])  # A_w^T y_w, (1, n)
        uy = basis.coords(back, r)[0] / s  # U_r^T y_w = S_r^-1 V_r^T A_w^T y_w
        ybar = uy / s
        rho2 = 1.0 / s**2
        perp = float((yw**2).sum() - (uy**2).sum())
        log_const = (
            -0.5 * max(perp, 0.0)
            - system.log_std_sum()
            - 0.5 * (system.m - r) * math.log(2 * math.pi)
            - float(torch.log(s).sum())
        )
        return cls(basis=basis, ybar=ybar, rho2=rho2, log_const=log_const, factorisation=kind,
                   setup_seconds=time.perf_counter() - start)

    @classmethod
    def on_device(cls, problem, image_shape: tuple[int, ...], factorisation: str = "auto"
                  ) -> SVDLikelihood:
        """:meth:`from_problem`, with the tensors moved to the device of ``problem.y``."""
        lik = cls.from_problem(problem, image_shape, factorisation=factorisation)
        device = problem.y.device
        lik.basis, lik.ybar, lik.rho2 = (lik.basis.to(device), lik.ybar.to(device),
                                         lik.rho2.to(device))
        return lik

    def coords(self, x: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """``xbar = V^T x`` in float64: ``(N, n)`` (full basis) or ``(N, r)`` (economy);
        ``width``: the first ``width`` coordinates only (e.g. the ``r`` observed ones)."""
        return self.basis.coords(x.reshape(x.shape[0], -1).to(torch.float64), width)

    def image(self, xbar: torch.Tensor, mean: torch.Tensor, mean_bar: torch.Tensor,
              var: float, generator: torch.Generator | None) -> torch.Tensor:
        """Particles ``(N, n)`` float64 in image space from new coordinates ``xbar``.

        Full basis: ``V xbar`` (``xbar`` ``(N, n)``; ``mean``, ``mean_bar`` and ``generator``
        unused).  Economy: ``xbar`` ``(N, r)`` are the new observed coordinates of particles
        moved by the isotropic kernel ``N(mean, var I)`` (``mean`` ``(N, n)``,
        ``mean_bar = V_r^T mean`` ``(N, r)``), and the complement is drawn from that kernel,
        ``P mean + sqrt(var) P w``, ``w ~ N(0, I_n)`` from ``generator`` (module docstring).
        """
        if self.complete:
            return self.basis.expand(xbar)
        w = torch.randn(mean.shape, dtype=torch.float64, device=mean.device,
                        generator=generator)
        return (mean + self.basis.expand(xbar - mean_bar)
                + math.sqrt(var) * self.basis.project_out(w))
