"""Elementary operators: identity, diagonal, dense matrix, the real/complex adapter and
elementwise maps.

Each is a small building block of the domain operators and of test problems; all follow the
contract of :mod:`diffinv.operators.base` (batch first, exact adjoints for the real inner
product ``<u, v> = Re sum(conj(u) * v)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .base import LinearOperator, Operator, check_batch

__all__ = ["ElementwiseOperator", "Identity", "Diagonal", "MatrixOperator", "RealToComplex"]


class ElementwiseOperator(Operator):
    """A pointwise nonlinear map ``y = f(x)``, e.g. ``|z|^2`` for intensity measurements.

    Parameters
    ----------
    fn : callable
        Differentiable torch function applied to the whole tensor.
    name : str
        Name shown in ``repr``.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str = "f"):
        self.fn = fn
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def __repr__(self) -> str:
        return f"ElementwiseOperator({self.name})"


class Identity(LinearOperator):
    """The identity map (denoising problems)."""

    def __init__(self, shape: tuple[int, ...] | None = None):
        self.in_shape = self.out_shape = tuple(shape) if shape is not None else None

    def infer_in_shape(self, out_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return self.in_shape if self.in_shape is not None else out_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y


class Diagonal(LinearOperator):
    """Pointwise multiplication ``y = w * x`` by a fixed tensor (masks, coil maps, gains).

    Parameters
    ----------
    weights : torch.Tensor
        Real or complex tensor broadcastable against the input (without or with the batch
        dimension).  The adjoint multiplies by ``conj(weights)``.
    """

    strict_in_shape = False

    def __init__(self, weights: torch.Tensor):
        if not isinstance(weights, torch.Tensor):
            raise ValueError("weights: expected a torch.Tensor")
        self.weights = weights
        self.in_shape = self.out_shape = tuple(weights.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.weights.conj() * y


class MatrixOperator(LinearOperator):
    """A dense matrix acting on the flattened input: ``y = A vec(x)``.

    Parameters
    ----------
    matrix : torch.Tensor
        ``(m, n)`` real or complex matrix.
    in_shape : tuple of int, optional
        Per-item input shape with ``prod(in_shape) == n``; default ``(n,)``.  The output has
        shape ``(batch, m)``.
    """

    def __init__(self, matrix: torch.Tensor, in_shape: tuple[int, ...] | None = None):
        if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2:
            got = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
            raise ValueError(
                f"matrix: expected a 2-D torch.Tensor of shape (m, n), got {got}"
            )
        if matrix.numel() == 0:
            raise ValueError(
                f"matrix: expected a non-empty matrix, got shape {tuple(matrix.shape)}"
            )
        if not bool(torch.isfinite(matrix).all()):
            raise ValueError("matrix: contains NaN or Inf entries")
        m, n = matrix.shape
        shape = (n,) if in_shape is None else tuple(int(s) for s in in_shape)
        if math.prod(shape) != n:
            raise ValueError(f"in_shape: expected {n} elements to match the matrix, got {shape}")
        self.matrix = matrix
        self.in_shape = shape
        self.out_shape = (m,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, flat = _common_dtype(self.matrix, x.reshape(x.shape[0], -1))
        return flat @ a.transpose(0, 1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        check_batch(y, self.out_shape, "y", self)
        a, y = _common_dtype(self.matrix, y)
        out = y @ a.conj()
        return out.reshape(y.shape[0], *self.in_shape)

    def to_matrix(self, in_shape=None, dtype=None) -> torch.Tensor:
        """The matrix itself, promoted to ``dtype`` (a complex matrix stays complex)."""
        if dtype is None:
            return self.matrix
        return self.matrix.to(torch.promote_types(self.matrix.dtype, dtype))


def _common_dtype(a: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, t)`` in one dtype: complex if either is, else ``t``'s real dtype."""
    if t.is_complex() and not a.is_complex():
        return a.to(t.dtype), t
    if a.is_complex() and not t.is_complex():
        return a, t.to(a.dtype)
    return (a if a.dtype == t.dtype else a.to(t.dtype)), t


class RealToComplex(LinearOperator):
    r"""The explicit adapter between a prior's real channels and complex images.

    .. math:: z = x_{:C} + i\, x_{C:}

    Maps ``(batch, 2*C, ...)`` real tensors (real parts in the first ``C`` channels,
    imaginary parts in the last ``C``) to ``(batch, C, ...)`` complex tensors.  It is
    real-linear; its adjoint for the real inner product returns ``(Re y, Im y)`` stacked
    along the channel axis, so it is also the exact inverse.  Compose a complex-valued
    operator with it (``op @ RealToComplex()``) to solve a complex problem with a real prior;
    the composition takes its input shape ``(2*C, ...)`` from ``op.in_shape``.

    Parameters
    ----------
    in_shape : tuple of int, optional
        Per-item real shape ``(2*C, ...)``.  Without it, inputs must be images
        ``(batch, 2*C, H, W)`` or volumes (at least 4 dimensions) so that a missing batch
        axis is not silently read as channels.
    """

    def __init__(self, in_shape: tuple[int, ...] | None = None):
        if in_shape is not None:
            in_shape = tuple(int(s) for s in in_shape)
            if len(in_shape) < 1 or in_shape[0] % 2 or in_shape[0] < 2:
                raise ValueError(
                    f"in_shape: expected (2*C, ...) with an even channel count, got {in_shape}"
                )
            self.in_shape = in_shape
            self.out_shape = (in_shape[0] // 2, *in_shape[1:])

    def infer_in_shape(self, out_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if self.in_shape is not None or out_shape is None or len(out_shape) < 1:
            return self.in_shape
        return (2 * int(out_shape[0]), *out_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(x, self.in_shape, "x", self)
        if x.is_complex():
            raise ValueError("x: expected a real tensor with 2*C channels, got complex")
        if self.in_shape is None and x.ndim < 4:
            raise ValueError(
                f"x: expected (batch, 2*C, H, W) real channels, got {tuple(x.shape)}; "
                "a tensor without the batch axis is not accepted (pass in_shape= for other "
                "layouts)"
            )
        if x.shape[1] % 2:
            raise ValueError(f"x: expected (batch, 2*C, ...) real channels, got {tuple(x.shape)}")
        c = x.shape[1] // 2
        return torch.complex(x[:, :c], x[:, c:])

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        check_batch(y, self.out_shape, "y", self)
        if y.ndim < 2:
            raise ValueError(f"y: expected (batch, C, ...) complex channels, got {tuple(y.shape)}")
        if not y.is_complex():
            y = y.to(torch.promote_types(y.dtype, torch.complex64))
        return torch.cat([y.real, y.imag], dim=1)
