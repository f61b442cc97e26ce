"""Operator contract: deterministic forward models and exact adjoints.

An :class:`Operator` maps a batch of images ``x`` of shape ``(batch, *in_shape)`` to a batch
of clean measurements ``A(x)`` of shape ``(batch, *out_shape)``.  A :class:`LinearOperator`
also provides the exact adjoint ``A^H`` with respect to the real inner product
``<u, v> = Re sum(conj(u) * v)`` (which equals the usual complex inner product whenever the
operator is complex-linear).  Linear operators compose with ``@`` (the adjoint of ``A @ B`` is
``B^H @ A^H``), add with ``+`` and scale by numbers.

Nothing here subclasses :class:`torch.nn.Module`: operators are light objects holding tensors
(masks, coil maps, geometry).  :meth:`Operator.to` moves every tensor attribute to a device.
All operations are differentiable by autograd, so nonlinear operators built as a linear
operator followed by an elementwise map get their gradients for free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property

import torch

__all__ = [
    "Operator",
    "LinearOperator",
    "ComposedOperator",
    "ComposedLinearOperator",
    "ScaledLinearOperator",
    "SumLinearOperator",
    "AdjointOperator",
    "ElementwiseOperator",
    "Identity",
    "Diagonal",
    "MatrixOperator",
    "RealToComplex",
]


class Operator:
    """A deterministic forward model ``y = A(x)``, batched over the leading dimension.

    Subclasses implement :meth:`forward`.  ``in_shape`` and ``out_shape`` are the per-item
    shapes (without the batch dimension) when they are fixed, else ``None``.

    Attributes
    ----------
    in_shape : tuple of int or None
        Shape of one input item, e.g. ``(1, H, W)``.
    out_shape : tuple of int or None
        Shape of one output item.
    """

    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None
    is_linear: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def __matmul__(self, other: Operator) -> Operator:
        if not isinstance(other, Operator):
            return NotImplemented
        if isinstance(self, LinearOperator) and isinstance(other, LinearOperator):
            return ComposedLinearOperator(self, other)
        return ComposedOperator(self, other)

    def to(self, device: torch.device | str) -> Operator:
        """Move every tensor attribute (recursively through sub-operators) to ``device``.

        Returns ``self`` (moved in place), mirroring :meth:`torch.nn.Module.to`.
        """
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
            elif isinstance(value, Operator):
                value.to(device)
            elif (
                isinstance(value, (list, tuple))
                and value
                and all(isinstance(v, Operator) for v in value)
            ):
                for v in value:
                    v.to(device)
        # cached adjoints hold references to self; drop them so they are rebuilt
        self.__dict__.pop("H", None)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape})"


class LinearOperator(Operator):
    """A linear forward model with an exact adjoint.

    Subclasses implement :meth:`forward` and :meth:`adjoint`; they may override
    :meth:`normal` (``A^H A``) with a cheaper formula.
    """

    is_linear = True

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement adjoint")

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the normal operator ``A^H A x``."""
        return self.adjoint(self.forward(x))

    @cached_property
    def H(self) -> LinearOperator:  # noqa: N802 - mathematical notation
        """The adjoint operator ``A^H`` (cached)."""
        return AdjointOperator(self)

    def __mul__(self, scalar: complex) -> LinearOperator:
        if isinstance(scalar, (int, float, complex)) or (
            isinstance(scalar, torch.Tensor) and scalar.ndim == 0
        ):
            return ScaledLinearOperator(self, scalar)
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self) -> LinearOperator:
        return ScaledLinearOperator(self, -1.0)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumLinearOperator(self, other)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumLinearOperator(self, ScaledLinearOperator(other, -1.0))

    def to_matrix(
        self, in_shape: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Dense matrix of the operator acting on the flattened input.

        Builds the matrix column by column by applying :meth:`forward` to the canonical basis,
        so it is meant for small problems (exact posteriors, tests).

        Parameters
        ----------
        in_shape : tuple of int, optional
            Per-item input shape; defaults to ``self.in_shape``.
        dtype : torch.dtype
            Dtype of the basis vectors (real or complex).

        Returns
        -------
        torch.Tensor
            ``(m, n)`` matrix with ``n = prod(in_shape)`` and ``m`` the flattened output size.
        """
        shape = tuple(in_shape) if in_shape is not None else self.in_shape
        if shape is None:
            raise ValueError("in_shape: expected the per-item input shape, got None")
        n = math.prod(shape)
        device = _first_tensor_device(self)
        eye = torch.eye(n, dtype=dtype, device=device).reshape(n, *shape)
        cols = self.forward(eye).reshape(n, -1)
        return cols.transpose(0, 1).contiguous()


class AdjointOperator(LinearOperator):
    """The adjoint ``A^H`` of a linear operator, sharing its tensors."""

    def __init__(self, op: LinearOperator):
        self.op = op
        self.in_shape, self.out_shape = op.out_shape, op.in_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.forward(y)

    @cached_property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.op


class ComposedOperator(Operator):
    """``outer(inner(x))`` for arbitrary operators."""

    def __init__(self, outer: Operator, inner: Operator):
        self.outer, self.inner = outer, inner
        self.in_shape, self.out_shape = inner.in_shape, outer.out_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))

    def __repr__(self) -> str:
        return f"{self.outer!r} @ {self.inner!r}"


class ComposedLinearOperator(LinearOperator):
    """``outer @ inner`` with adjoint ``inner^H @ outer^H``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        self.outer, self.inner = outer, inner
        self.in_shape, self.out_shape = inner.in_shape, outer.out_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer.forward(self.inner.forward(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))

    def __repr__(self) -> str:
        return f"{self.outer!r} @ {self.inner!r}"


class ScaledLinearOperator(LinearOperator):
    """``c * A`` for a (possibly complex) number ``c``; adjoint ``conj(c) * A^H``."""

    def __init__(self, op: LinearOperator, scalar: complex | torch.Tensor):
        self.op = op
        self.scalar = scalar
        self.in_shape, self.out_shape = op.in_shape, op.out_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scalar * self.op.forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        c = self.scalar
        c = c.conj() if isinstance(c, torch.Tensor) else complex(c).conjugate()
        if isinstance(c, complex) and c.imag == 0.0:
            c = c.real
        return c * self.op.adjoint(y)


class SumLinearOperator(LinearOperator):
    """``A + B`` for operators with the same input and output shapes."""

    def __init__(self, a: LinearOperator, b: LinearOperator):
        self.a, self.b = a, b
        self.in_shape, self.out_shape = a.in_shape or b.in_shape, a.out_shape or b.out_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a.forward(x) + self.b.forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.a.adjoint(y) + self.b.adjoint(y)


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
            raise ValueError("matrix: expected a 2-D torch.Tensor of shape (m, n)")
        m, n = matrix.shape
        shape = (n,) if in_shape is None else tuple(int(s) for s in in_shape)
        if math.prod(shape) != n:
            raise ValueError(f"in_shape: expected {n} elements to match the matrix, got {shape}")
        self.matrix = matrix
        self.in_shape = shape
        self.out_shape = (m,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        a = self.matrix
        if flat.is_complex() and not a.is_complex():
            a = a.to(flat.dtype)
        elif a.is_complex() and not flat.is_complex():
            flat = flat.to(a.dtype)
        elif a.dtype != flat.dtype:
            a = a.to(flat.dtype)
        return flat @ a.transpose(0, 1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        a = self.matrix
        if y.is_complex() and not a.is_complex():
            a = a.to(y.dtype)
        elif a.is_complex() and not y.is_complex():
            y = y.to(a.dtype)
        elif a.dtype != y.dtype:
            a = a.to(y.dtype)
        out = y @ a.conj()
        return out.reshape(y.shape[0], *self.in_shape)

    def to_matrix(self, in_shape=None, dtype=None) -> torch.Tensor:  # noqa: D102
        return self.matrix if dtype is None else self.matrix.to(dtype)


class RealToComplex(LinearOperator):
    """The explicit adapter between a prior's real channels and complex images.

    Maps ``(batch, 2*C, ...)`` real tensors (real parts in the first ``C`` channels,
    imaginary parts in the last ``C``) to ``(batch, C, ...)`` complex tensors.  It is
    real-linear; its adjoint for the real inner product returns ``(Re y, Im y)`` stacked
    along the channel axis, so it is also the exact inverse.  Compose a complex-valued
    operator with it (``op @ RealToComplex()``) to solve a complex problem with a real prior.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            raise ValueError("x: expected a real tensor with 2*C channels, got complex")
        if x.ndim < 2 or x.shape[1] % 2:
            raise ValueError(f"x: expected (batch, 2*C, ...) real channels, got {tuple(x.shape)}")
        c = x.shape[1] // 2
        return torch.complex(x[:, :c], x[:, c:])

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if not y.is_complex():
            y = y.to(torch.promote_types(y.dtype, torch.complex64))
        return torch.cat([y.real, y.imag], dim=1)


def _first_tensor_device(op: Operator) -> torch.device:
    for value in vars(op).values():
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, Operator):
            return _first_tensor_device(value)
    return torch.device("cpu")
