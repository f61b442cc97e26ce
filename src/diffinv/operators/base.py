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
operator followed by an elementwise map get their gradients for free.  The elementary
operators (identity, diagonal, dense matrix, real/complex adapter, elementwise maps) are in
:mod:`diffinv.operators.elementary`.
"""

from __future__ import annotations

import math
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
    "check_batch",
]


def check_batch(
    x: object, in_shape: tuple[int, ...] | None = None, name: str = "x", op: object = None
) -> torch.Tensor:
    """Check that ``x`` is a non-empty batch ``(batch, *in_shape)`` of an operator's inputs.

    Parameters
    ----------
    x : object
        The input; must be a floating-point or complex :class:`torch.Tensor` with at least
        one dimension and a non-zero leading (batch) dimension.
    in_shape : tuple of int, optional
        Required per-item shape ``x.shape[1:]``; not checked when ``None``.
    name : str
        Argument name used in error messages.
    op : object, optional
        The operator, named in error messages.

    Returns
    -------
    torch.Tensor
        ``x`` itself.

    Raises
    ------
    ValueError
        Naming ``name``, the expected and the actual shape or type.
    """
    who = f" of {type(op).__name__}" if op is not None else ""
    if not isinstance(x, torch.Tensor):
        hint = " (convert with torch.from_numpy)" if type(x).__module__ == "numpy" else ""
        raise ValueError(
            f"{name}: expected a torch.Tensor input{who}, got {type(x).__name__}{hint}"
        )
    if not (x.is_floating_point() or x.is_complex()):
        raise ValueError(
            f"{name}: expected a floating-point or complex tensor as input{who}, got {x.dtype}"
        )
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a non-empty batch (batch, ...) as input{who}, got shape "
            f"{tuple(x.shape)}"
        )
    if in_shape is not None and tuple(x.shape[1:]) != tuple(in_shape):
        expected = ", ".join(["batch", *map(str, in_shape)])
        missing = " (is the batch axis missing?)" if tuple(x.shape) == tuple(in_shape) else ""
        raise ValueError(
            f"{name}: expected shape ({expected}) as input{who}, got {tuple(x.shape)}{missing}"
        )
    return x


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
    #: whether ``op(x)`` requires ``x.shape[1:] == in_shape`` (False where ``in_shape`` is
    #: only a shape the input broadcasts against, as for :class:`Diagonal`)
    strict_in_shape: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = self.in_shape if self.strict_in_shape else None
        return self.forward(check_batch(x, shape, "x", self))

    def infer_in_shape(self, out_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """Per-item input shape that gives output items of ``out_shape`` (``None``: unknown).

        Used by composition ``outer @ self`` to keep shapes when ``self`` is shape-free.
        """
        return self.in_shape

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
        self, in_shape: tuple[int, ...] | None = None, dtype: torch.dtype = torch.float64,
        block: int = 512,
    ) -> torch.Tensor:
        """Dense matrix of the operator acting on the flattened input.

        Builds the matrix column by column by applying :meth:`forward` to the canonical basis,
        ``block`` basis vectors per call (so no ``n x n`` identity is held beside the
        matrix); meant for small problems (exact posteriors, MCGdiff's set-up, tests).

        Parameters
        ----------
        in_shape : tuple of int, optional
            Per-item input shape; defaults to ``self.in_shape``.
        dtype : torch.dtype
            Dtype of the basis vectors (real or complex).
        block : int
            Basis vectors per :meth:`forward` call.

        Returns
        -------
        torch.Tensor
            ``(m, n)`` matrix with ``n = prod(in_shape)`` and ``m`` the flattened output size.
        """
        shape = tuple(in_shape) if in_shape is not None else self.in_shape
        if shape is None:
            raise ValueError("in_shape: expected the per-item input shape, got None")
        if not (isinstance(block, int) and block >= 1):
            raise ValueError(f"block: expected a positive integer, got {block!r}")
        n = math.prod(shape)
        device = _first_tensor_device(self)
        matrix = None
        for start in range(0, n, block):
            stop = min(start + block, n)
            eye = torch.zeros(stop - start, n, dtype=dtype, device=device)
            eye[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            cols = self.forward(eye.reshape(stop - start, *shape)).reshape(stop - start, -1)
            if matrix is None:
                matrix = torch.empty(cols.shape[1], n, dtype=cols.dtype, device=cols.device)
            matrix[:, start:stop] = cols.T
        return matrix


class AdjointOperator(LinearOperator):
    """The adjoint ``A^H`` of a linear operator, sharing its tensors."""

    def __init__(self, op: LinearOperator):
        self.op = op
        self.in_shape, self.out_shape = op.out_shape, op.in_shape
        self.strict_in_shape = op.strict_in_shape

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
        self.in_shape, self.out_shape = _composed_shapes(outer, inner)
        self.strict_in_shape = inner.strict_in_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))

    def __repr__(self) -> str:
        return f"{self.outer!r} @ {self.inner!r}"


class ComposedLinearOperator(LinearOperator):
    """``outer @ inner`` with adjoint ``inner^H @ outer^H``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        self.outer, self.inner = outer, inner
        self.in_shape, self.out_shape = _composed_shapes(outer, inner)
        self.strict_in_shape = inner.strict_in_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))

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
        self.strict_in_shape = op.strict_in_shape

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
        self.strict_in_shape = a.strict_in_shape and b.strict_in_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a.forward(x) + self.b.forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.a.adjoint(y) + self.b.adjoint(y)


def _composed_shapes(
    outer: Operator, inner: Operator
) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """``(in_shape, out_shape)`` of ``outer @ inner``; ``ValueError`` if they cannot chain."""
    mid = outer.in_shape if outer.strict_in_shape else None
    if inner.out_shape is not None and mid is not None and tuple(inner.out_shape) != tuple(mid):
        raise ValueError(
            f"other: cannot compose {type(outer).__name__} (input {tuple(mid)}) with "
            f"{type(inner).__name__} (output {tuple(inner.out_shape)})"
        )
    in_shape = inner.in_shape
    if in_shape is None:
        in_shape = inner.infer_in_shape(mid)
    return (tuple(in_shape) if in_shape is not None else None), outer.out_shape


def _first_tensor_device(op: Operator) -> torch.device:
    for value in vars(op).values():
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, Operator):
            return _first_tensor_device(value)
    return torch.device("cpu")
