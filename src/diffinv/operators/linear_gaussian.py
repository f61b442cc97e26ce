r"""Linear-Gaussian problems as real systems, for exact posteriors.

A linear operator with Gaussian noise is written as ``y = A x + n`` with real ``x`` (the
prior's flattened event) and real stacked data: complex measurements contribute their real
and imaginary parts as separate rows, each with the noise model's per-component sigma.
:func:`real_linear_system` returns ``A`` as a dense matrix (small problems);
:class:`WhitenedSystem` applies the whitened ``A_w = Gamma^{-1/2} A`` and its transpose
through the operator itself, without forming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import LinearOperator
from .problem import InverseProblem

__all__ = ["real_linear_system", "stack_real_rows", "WhitenedSystem"]


def real_linear_system(
    problem: InverseProblem, event_shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(A, y, noise_var)`` in float64 for a linear-Gaussian problem.

    Parameters
    ----------
    problem : InverseProblem
        Must have a :class:`LinearOperator` and :class:`GaussianNoise`.
    event_shape : tuple of int
        Shape of one image (the prior's event shape).

    Returns
    -------
    A : torch.Tensor
        ``(m, n)`` real matrix, ``n = prod(event_shape)``.
    y : torch.Tensor
        ``(m,)`` real data vector.
    noise_var : torch.Tensor
        ``(m,)`` noise variances.
    """
    if not problem.is_linear_gaussian:
        raise ValueError(
            "problem: the exact posterior needs a LinearOperator with GaussianNoise, got "
            f"{type(problem.operator).__name__} with {type(problem.noise).__name__}"
        )
    op: LinearOperator = problem.operator
    if problem.y.shape[0] != 1:
        raise ValueError(f"y: expected a single measurement (batch 1), got {problem.y.shape[0]}")
    a = op.to_matrix(tuple(event_shape), dtype=torch.float64)
    if a.shape[1] != math.prod(event_shape):
        raise ValueError("event_shape: does not match the operator's input size")
    return stack_real_rows(problem, a)


def stack_real_rows(
    problem: InverseProblem, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A, y, noise_var)`` as real float64 arrays from the operator's matrix ``a``.

    Complex rows become stacked real and imaginary rows; entries that the noise model does
    not measure (:class:`GaussianNoise` ``mask``) are dropped.
    """
    complex_rows = a.is_complex() or problem.y.is_complex()
    keep, y, var = _real_data(problem, complex_rows)
    a = a[keep]
    if complex_rows:
        a = a.to(torch.complex128)
        a = torch.cat([a.real, a.imag], dim=0)
    return a.to(torch.float64), y, var


def _real_data(problem: InverseProblem, complex_rows: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(keep, y, var)``: the measured entries of one item of ``y`` (bool, flat; positive
    noise weight), the real float64 data rows (real then imaginary parts when
    ``complex_rows``) and their noise variances."""
    y64 = problem.y.to(torch.complex128 if problem.y.is_complex() else torch.float64)
    weight = problem.noise.weights(y64).reshape(-1).to(torch.float64)
    keep = weight > 0
    y = y64.reshape(-1)[keep]
    var = 1.0 / weight[keep]
    if complex_rows:
        y = y.to(torch.complex128)
        y = torch.cat([y.real, y.imag])
        var = torch.cat([var, var])
    return keep, y.to(torch.float64), var


@dataclass
class WhitenedSystem:
    r"""The whitened real system ``A_w = Gamma^{-1/2} A``, ``y_w = Gamma^{-1/2} y``, applied
    through the operator (no dense matrix).

    With ``K`` the measured entries of one item of ``y`` (those of positive noise weight) and
    ``s_k`` their per-component standard deviations, the real rows are ``Re(A x)_k / s_k``
    followed, for complex data, by ``Im(A x)_k / s_k``: the rows of
    :func:`real_linear_system` divided by their standard deviations, in the same order.
    For real ``x`` the transpose is ``A_w^T u = Re(A^H (Gamma^{-1/2} (u_re + i u_im)))``.

    Attributes
    ----------
    operator : LinearOperator
    event_shape : tuple of int
        One image's shape (``n = prod(event_shape)`` real unknowns).
    keep : torch.Tensor
        bool ``(size of one item of y,)``: measured entries.
    inv_std : torch.Tensor
        float64 ``(m,)``: ``1 / s`` of each real row.
    yw : torch.Tensor
        float64 ``(m,)``: the whitened real data.
    data_shape : tuple of int
        Shape of one item of ``y``.
    complex_rows : bool
        Whether the data are complex (two real rows per measured entry).
    """

    operator: LinearOperator
    event_shape: tuple[int, ...]
    keep: torch.Tensor
    inv_std: torch.Tensor
    yw: torch.Tensor
    data_shape: tuple[int, ...]
    complex_rows: bool

    @classmethod
    def from_problem(cls, problem: InverseProblem, event_shape: tuple[int, ...]
                     ) -> WhitenedSystem:
        """Build from a linear-Gaussian problem with a single measurement (batch 1)."""
        if not problem.is_linear_gaussian:
            raise ValueError(
                "problem: the exact posterior needs a LinearOperator with GaussianNoise, got "
                f"{type(problem.operator).__name__} with {type(problem.noise).__name__}"
            )
        if problem.y.shape[0] != 1:
            raise ValueError(
                f"y: expected a single measurement (batch 1), got {problem.y.shape[0]}")
        op: LinearOperator = problem.operator
        event_shape = tuple(int(d) for d in event_shape)
        try:
            probe = op.forward(torch.zeros(1, *event_shape, dtype=torch.float64,
                                           device=problem.y.device))
        except ValueError as err:
            raise ValueError(f"event_shape: the operator does not take images of shape "
                             f"{event_shape}: {err}") from err
        if probe[0].numel() != problem.y[0].numel():
            raise ValueError(f"event_shape: the operator maps {event_shape} to "
                             f"{tuple(probe.shape[1:])}, not y's {tuple(problem.y.shape[1:])}")
        complex_rows = bool(probe.is_complex() or problem.y.is_complex())
        keep, y, var = _real_data(problem, complex_rows)
        inv_std = var.rsqrt()
        return cls(op, event_shape, keep, inv_std, y * inv_std, tuple(problem.y.shape[1:]),
                   complex_rows)

    @property
    def m(self) -> int:
        """Real data rows."""
        return int(self.yw.numel())

    @property
    def n(self) -> int:
        """Real unknowns."""
        return math.prod(self.event_shape)

    def log_std_sum(self) -> float:
        """``sum log s`` over the real rows (the Gaussian's normalising term)."""
        return -float(torch.log(self.inv_std).sum())

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        """``A_w z``: float64 ``(B, n)`` to ``(B, m)``."""
        b = z.shape[0]
        out = self.operator.forward(z.reshape(b, *self.event_shape)).reshape(b, -1)
        out = out[:, self.keep]
        if self.complex_rows:
            out = out.to(torch.complex128)
            out = torch.cat([out.real, out.imag], dim=1)
        return out.to(torch.float64) * self.inv_std

    def adjoint(self, u: torch.Tensor) -> torch.Tensor:
        """``A_w^T u``: float64 ``(B, m)`` to ``(B, n)``."""
        b = u.shape[0]
        u = u * self.inv_std
        k = int(self.keep.sum())
        if self.complex_rows:
            u = torch.complex(u[:, :k], u[:, k:])
        full = torch.zeros(b, self.keep.numel(), dtype=u.dtype, device=u.device)
        full[:, self.keep] = u
        x = self.operator.adjoint(full.reshape(b, *self.data_shape)).reshape(b, -1)
        return (x.real if x.is_complex() else x).to(torch.float64)

    def normal(self, z: torch.Tensor) -> torch.Tensor:
        """``A_w^T A_w z`` for one float64 vector ``(n,)``."""
        return self.adjoint(self.apply(z[None]))[0]
