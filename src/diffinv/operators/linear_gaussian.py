"""Linear-Gaussian problems as dense real matrices, for exact posteriors.

A linear operator with Gaussian noise is written as ``y = A x + n`` with real ``x`` (the
prior's flattened event) and real stacked data: complex measurements contribute their real
and imaginary parts as separate rows, each with the noise model's per-component sigma.
"""

from __future__ import annotations

import math

import torch

from .base import LinearOperator
from .problem import InverseProblem

__all__ = ["real_linear_system", "stack_real_rows"]


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
    y = problem.y.reshape(-1)
    y64 = problem.y.to(torch.complex128 if problem.y.is_complex() else torch.float64)
    weight = problem.noise.weights(y64).reshape(-1)
    keep = weight > 0
    a, y = a[keep], y[keep]
    var = 1.0 / weight[keep].to(torch.float64)
    if a.is_complex() or y.is_complex():
        a = a.to(torch.complex128)
        y = y.to(torch.complex128)
        a = torch.cat([a.real, a.imag], dim=0)
        y = torch.cat([y.real, y.imag], dim=0)
        var = torch.cat([var, var], dim=0)
    return a.to(torch.float64), y.to(torch.float64), var
