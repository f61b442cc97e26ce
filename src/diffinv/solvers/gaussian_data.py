r"""Matrix-free linear algebra for linear-Gaussian data terms.

For a problem ``y = A x + n`` with a :class:`~diffinv.operators.LinearOperator` ``A`` and
Gaussian noise ``n ~ N(0, diag(s^2))`` (``s`` a number or a tensor per measurement; for complex
data ``s`` is the standard deviation of each real and imaginary part), combined with an
isotropic Gaussian "prior" ``N(m, r^2 I)`` on the real image ``x``, the conditional is Gaussian:

.. math::
    Q = A^T W A + I / r^2,\quad W = \mathrm{diag}(1/s^2),\quad
    \mu = Q^{-1} (A^T W y + m / r^2),\quad \Sigma = Q^{-1}.

:class:`LinearGaussianData` applies ``Q`` with the operator's ``forward``/``adjoint`` only (no
dense matrix) and solves with batched conjugate gradients.  Complex-valued measurements are
handled through the real inner product ``<u, v> = Re sum(conj(u) v)``: the adjoint of a
real-to-complex operator is taken as the real part of ``A^H``, which is exactly the adjoint of
``A`` seen as a real-linear map ``R^n -> R^{2m}``.

Exact Gaussian draws use perturbation-optimisation (Papandreou & Yuille 2010; Orieux, Feron &
Giovannelli 2012): with ``z1 ~ N(0, I)`` on the image and ``z2 ~ N(0, I)`` on the data,

.. math:: Q x = A^T W (y + s z_2) + (m + r z_1) / r^2

has solution ``x ~ N(mu, Q^{-1})`` exactly (up to the CG tolerance).
"""

from __future__ import annotations

import math

import torch

from ..operators.base import LinearOperator
from ..operators.problem import InverseProblem

__all__ = ["LinearGaussianData", "batched_cg", "real_dot"]


def real_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item real inner product ``Re sum(conj(a) * b)``, shape ``(batch,)``."""
    prod = a.conj() * b if a.is_complex() else a * b
    if prod.is_complex():
        prod = prod.real
    return prod.reshape(prod.shape[0], -1).sum(dim=1)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


def batched_cg(
    apply,
    rhs: torch.Tensor,
    x0: torch.Tensor | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[torch.Tensor, int, float]:
    """Solve ``M x = rhs`` for a symmetric positive definite ``M`` with batched CG.

    Every batch item is an independent system (its own step lengths); iteration stops when
    the relative residual ``||rhs - M x|| / ||rhs||`` of every item is below ``tol``.

    Parameters
    ----------
    apply : callable
        ``apply(x) -> M x`` for a batch ``(batch, ...)``.
    rhs : torch.Tensor
        Right-hand sides ``(batch, ...)``, real.
    x0 : torch.Tensor, optional
        Initial guess (default zero).
    tol : float
        Relative residual tolerance.
    max_iter : int
        Maximum number of iterations.

    Returns
    -------
    x : torch.Tensor
        Solution, same shape and dtype as ``rhs``.
    iterations : int
        Iterations performed.
    rel_residual : float
        Largest relative residual over the batch at exit.
    """
    x = torch.zeros_like(rhs) if x0 is None else x0.clone()
    r = rhs - apply(x) if x0 is not None else rhs.clone()
    b_norm = torch.sqrt(real_dot(rhs, rhs)).clamp(min=torch.finfo(rhs.dtype).tiny)
    p = r.clone()
    rr = real_dot(r, r)
    it = 0
    rel = float((torch.sqrt(rr) / b_norm).max())
    while it < max_iter and rel > tol:
        mp = apply(p)
        pmp = real_dot(p, mp)
        # converged items are frozen (further steps would only amplify round-off)
        active = (torch.sqrt(rr) / b_norm > tol) & (pmp > 0)
        alpha = torch.where(active, rr / torch.where(active, pmp, 1.0), 0.0)
        x = x + _bcast(alpha, x) * p
        r = r - _bcast(alpha, r) * mp
        rr_new = real_dot(r, r)
        beta = torch.where(active, rr_new / torch.where(active, rr, 1.0), 0.0)
        p = r + _bcast(beta, p) * p
        rr = rr_new
        it += 1
        rel = float((torch.sqrt(rr) / b_norm).max())
    return x, it, rel


class LinearGaussianData:
    """The data term of a linear-Gaussian problem as matrix-free operations on real images.

    Parameters
    ----------
    problem : InverseProblem
        Must satisfy ``problem.is_linear_gaussian``.
    dtype : torch.dtype
        Real dtype of the images (chain dtype); data are cast to match.
    cg_tol : float, optional
        CG relative residual tolerance; default ``1e-10`` in float64, ``1e-5`` otherwise.
    cg_max_iter : int
        CG iteration cap.

    Attributes
    ----------
    max_iterations, max_residual : int, float
        Largest CG iteration count and exit residual seen so far (for diagnostics).
    """

    def __init__(
        self,
        problem: InverseProblem,
        dtype: torch.dtype,
        cg_tol: float | None = None,
        cg_max_iter: int = 200,
    ):
        if not problem.is_linear_gaussian:
            raise ValueError(
                "problem: the closed-form Gaussian step needs a LinearOperator with "
                f"GaussianNoise, got {type(problem.operator).__name__} with "
                f"{type(problem.noise).__name__}"
            )
        self.op: LinearOperator = problem.operator
        self.dtype = dtype
        y = problem.y
        self.complex_data = y.is_complex()
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.y = y.to(cdtype if self.complex_data else dtype)
        s = torch.as_tensor(problem.sigma, device=y.device).to(dtype)
        self.noise_std = torch.broadcast_to(s, y.shape[1:]).clone()
        self.weight = problem.noise.weights(self.y).to(dtype)  # 0 where unmeasured
        self.cg_tol = cg_tol if cg_tol is not None else (1e-10 if dtype == torch.float64 else 1e-5)
        self.cg_max_iter = int(cg_max_iter)
        self.max_iterations = 0
        self.max_residual = 0.0

    # -- operator pieces ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for a real batch."""
        return self.op.forward(x)

    def adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """Adjoint of ``A`` as a real-linear map (real part of ``A^H v``), in ``dtype``."""
        out = self.op.adjoint(v)
        if out.is_complex():
            out = out.real
        return out.to(self.dtype)

    def weighted_adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """``A^T W v``."""
        return self.adjoint(self.weight * v)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^T W A x``."""
        return self.weighted_adjoint(self.forward(x))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``y - A x`` (broadcast over the batch)."""
        return self.y - self.forward(x)

    # -- solves ------------------------------------------------------------------------------
    def solve(
        self, rhs: torch.Tensor, precision: float, x0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Solve ``(A^T W A + precision I) x = rhs`` by CG (``precision > 0``)."""
        if not precision > 0:
            raise ValueError(f"precision: expected a positive number, got {precision!r}")

        def apply(x: torch.Tensor) -> torch.Tensor:
            return self.normal(x) + precision * x

        x, it, rel = batched_cg(apply, rhs, x0, tol=self.cg_tol, max_iter=self.cg_max_iter)
        self.max_iterations = max(self.max_iterations, it)
        self.max_residual = max(self.max_residual, rel)
        return x

    def conditional_mean(self, m: torch.Tensor, r: float) -> torch.Tensor:
        """Mean (= mode) of ``p(x | y)`` under the prior ``N(m, r^2 I)``; ``m`` is a batch."""
        prec = 1.0 / r**2
        rhs = self.weighted_adjoint(self.y.expand(m.shape[0], *self.y.shape[1:])) + prec * m
        return self.solve(rhs, prec, x0=m)

    def conditional_sample(
        self, m: torch.Tensor, r: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Exact draw from ``p(x | y)`` under the prior ``N(m, r^2 I)`` (perturbation-optim.)."""
        prec = 1.0 / r**2
        batch = m.shape[0]
        shape = (batch, *self.y.shape[1:])
        real_dtype = self.noise_std.dtype
        z2 = torch.randn(shape, dtype=real_dtype, device=m.device, generator=generator)
        if self.complex_data:
            z2i = torch.randn(shape, dtype=real_dtype, device=m.device, generator=generator)
            z2 = torch.complex(z2, z2i)
        z1 = torch.randn(m.shape, dtype=m.dtype, device=m.device, generator=generator)
        y_pert = self.y + self.noise_std * z2
        rhs = self.weighted_adjoint(y_pert) + prec * (m + r * z1)
        return self.solve(rhs, prec, x0=m)

    def lipschitz(self, image_shape: tuple[int, ...], iterations: int = 30,
                  generator: torch.Generator | None = None) -> float:
        """Largest eigenvalue of ``A^T W A`` by power iteration (times 1.05 for safety)."""
        device = self.y.device
        v = torch.randn((1, *image_shape), dtype=self.dtype, device=device, generator=generator)
        v = v / torch.sqrt(real_dot(v, v)).reshape((1,) + (1,) * len(image_shape))
        lam = 0.0
        for _ in range(iterations):
            w = self.normal(v)
            lam = float(real_dot(v, w)[0])
            norm = float(torch.sqrt(real_dot(w, w))[0])
            if norm == 0.0 or not math.isfinite(norm):
                break
            v = w / norm
        return 1.05 * max(lam, 0.0)
