"""Checks that users can run on their own operators (and that our tests run on ours).

* :func:`check_adjoint` — normalised dot-product test of a linear operator's adjoint;
* :func:`check_linearity` — relative error of ``A(a x + b z)`` against ``a A x + b A z``;
* :func:`check_gradient` — :func:`torch.autograd.gradcheck` on a (nonlinear) operator.
"""

from __future__ import annotations

import torch

from .base import LinearOperator, Operator

__all__ = ["check_adjoint", "check_linearity", "check_gradient", "operator_norm"]


def _randn(shape, dtype, device, generator):
    return torch.randn(tuple(shape), dtype=dtype, device=device, generator=generator)


def _inner(u: torch.Tensor, v: torch.Tensor, real: bool) -> torch.Tensor:
    ip = (u.conj() * v).sum() if u.is_complex() or v.is_complex() else (u * v).sum()
    return ip.real if real and ip.is_complex() else ip


def operator_norm(
    op: LinearOperator,
    x_shape: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    n_iter: int = 30,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> float:
    """Estimate the spectral norm ``||A||_2`` by power iteration on ``A^H A``.

    Parameters
    ----------
    op : LinearOperator
    x_shape : tuple of int
        Full input shape including the batch dimension.
    dtype : torch.dtype
    n_iter : int
        Power iterations.
    """
    x = _randn(x_shape, dtype, device, generator)
    x = x / x.norm()
    value = 0.0
    for _ in range(n_iter):
        z = op.adjoint(op.forward(x))
        value = float(z.norm())
        if value == 0.0:
            return 0.0
        x = z / value
    return value**0.5


def check_adjoint(
    op: LinearOperator,
    x_shape: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float:
    r"""Normalised dot-product test of an operator's adjoint.

    .. math:: \frac{|\langle Ax, y\rangle - \langle x, A^H y\rangle|}{\|A\|\,\|x\|\,\|y\|}

    with random ``x`` of ``dtype`` and random ``y`` of the output's dtype.  When input or
    output is real the real part of the inner product is used (the adjoint of a real-linear
    map).  A correct adjoint gives about machine precision (below 1e-12 in float64).

    Parameters
    ----------
    op : LinearOperator
        Operator with ``forward`` and ``adjoint``.
    x_shape : tuple of int
        Full input shape including the batch dimension.
    dtype : torch.dtype
        Input dtype, e.g. ``torch.float64`` or ``torch.complex128``.

    Returns
    -------
    float
        The normalised error.
    """
    if not hasattr(op, "adjoint"):
        raise ValueError("op: expected a linear operator with an adjoint() method")
    g = torch.Generator(device=device).manual_seed(seed)
    x = _randn(x_shape, dtype, device, g)
    ax = op.forward(x)
    y = _randn(ax.shape, ax.dtype, device, g)
    aty = op.adjoint(y)
    if tuple(aty.shape) != tuple(x.shape):
        raise ValueError(
            f"op: adjoint returned shape {tuple(aty.shape)}, expected the input shape "
            f"{tuple(x.shape)}"
        )
    real = not (x.is_complex() and y.is_complex())
    lhs = _inner(ax, y, real)
    rhs = _inner(x, aty, real)
    norm = operator_norm(op, x_shape, dtype, device=device, generator=g)
    scale = max(norm, 1e-300) * float(x.norm()) * float(y.norm())
    return float(abs(lhs - rhs)) / scale


def check_linearity(
    op: Operator,
    x_shape: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float:
    """Relative error ``||A(a x + b z) - a A(x) - b A(z)|| / (|a| ||Ax|| + |b| ||Az||)``.

    Real scalars ``a, b`` are used so real-linear maps (e.g. complex channel adapters) pass.
    """
    g = torch.Generator(device=device).manual_seed(seed)
    x = _randn(x_shape, dtype, device, g)
    z = _randn(x_shape, dtype, device, g)
    a, b = 0.7, -1.3
    ax, az = op(x), op(z)
    err = (op(a * x + b * z) - (a * ax + b * az)).norm()
    scale = abs(a) * ax.norm() + abs(b) * az.norm()
    return float(err / torch.clamp(scale, min=1e-300))


def check_gradient(
    op: Operator,
    x_shape: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    seed: int = 0,
    x: torch.Tensor | None = None,
    atol: float = 1e-6,
    rtol: float = 1e-4,
) -> bool:
    """Run :func:`torch.autograd.gradcheck` on ``op`` at a random (or given) point.

    Complex outputs are checked through their real and imaginary parts.  Raises
    ``AssertionError`` describing the mismatch when the gradient is wrong; returns ``True``.
    """
    if x is None:
        g = torch.Generator(device=device).manual_seed(seed)
        x = _randn(x_shape, dtype, device, g)
    x = x.detach().clone().requires_grad_(True)

    def fn(inp: torch.Tensor) -> torch.Tensor:
        out = op(inp)
        return torch.view_as_real(out) if out.is_complex() else out

    try:
        return bool(torch.autograd.gradcheck(fn, (x,), atol=atol, rtol=rtol))
    except RuntimeError as err:  # gradcheck raises GradcheckError (a RuntimeError)
        raise AssertionError(f"gradient check failed for {op!r}: {err}") from err
