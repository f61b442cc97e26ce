"""Shared pieces of the phase-retrieval operators.

* the centred, orthonormal 2-D DFT ``F_c = S F S^{-1}`` (``S`` = ``fftshift``) and its
  inverse, which is also its adjoint;
* :class:`IntensityOperator`, the composition ``|B x|^2`` (or ``|B x|``) of a linear operator
  ``B`` with an elementwise modulus map, exposing ``B`` as ``.linear``;
* input validation helpers.
"""

from __future__ import annotations

import torch

from ..base import ComposedOperator, LinearOperator
from ..elementary import ElementwiseOperator

__all__ = ["fft2c", "ifft2c", "as_complex", "IntensityOperator", "MEASURES", "check_image"]

MEASURES = ("intensity", "amplitude")


def fft2c(z: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal DFT over the last two axes.

    ``fftshift(fft2(ifftshift(z), norm="ortho"))``: the pixel ``(M//2, M//2)`` is the origin
    both of the object grid and of the frequency grid (zero frequency in the centre).
    """
    dims = (-2, -1)
    return torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(z, dim=dims), norm="ortho"), dim=dims
    )


def ifft2c(u: torch.Tensor) -> torch.Tensor:
    """Inverse (and adjoint) of :func:`fft2c`."""
    dims = (-2, -1)
    return torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(u, dim=dims), norm="ortho"), dim=dims
    )


def as_complex(x: torch.Tensor) -> torch.Tensor:
    """Promote a real tensor to the matching complex dtype (float32 -> complex64, ...)."""
    if x.is_complex():
        return x
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return x.to(torch.promote_types(x.dtype, torch.complex64))


def complex_dtype_like(x: torch.Tensor) -> torch.dtype:
    """The complex dtype matching ``x``'s precision."""
    return as_complex(x[..., :0]).dtype


def check_image(name: str, x: torch.Tensor, in_shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``x`` has shape ``(batch, *in_shape)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != len(in_shape) + 1 or tuple(x.shape[1:]) != tuple(in_shape):
        raise ValueError(
            f"{name}: expected shape (batch, {', '.join(map(str, in_shape))}), "
            f"got {tuple(x.shape)}"
        )


def _abs2(z: torch.Tensor) -> torch.Tensor:
    return z.real**2 + z.imag**2 if z.is_complex() else z**2


def _abs(z: torch.Tensor) -> torch.Tensor:
    return z.abs()


class IntensityOperator(ComposedOperator):
    r"""``A(x) = |B x|^2`` (``measure="intensity"``) or ``|B x|`` (``measure="amplitude"``).

    A :class:`~diffinv.operators.ComposedOperator` of an elementwise modulus map with a
    linear operator ``B`` (kept with its exact adjoint as :attr:`linear`), so gradients come
    from autograd.  ``|z|^2`` is computed as ``Re(z)^2 + Im(z)^2`` (smooth everywhere);
    ``|z|`` has an undefined derivative at ``z = 0`` (autograd returns 0 there).

    Parameters
    ----------
    linear : LinearOperator
        The complex-valued linear map ``B``.
    measure : {"intensity", "amplitude"}
        Modulus squared or modulus.
    """

    def __init__(self, linear: LinearOperator, measure: str = "intensity"):
        if measure not in MEASURES:
            raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")
        fn = _abs2 if measure == "intensity" else _abs
        name = "|.|^2" if measure == "intensity" else "|.|"
        super().__init__(ElementwiseOperator(fn, name), linear)
        self.out_shape = linear.out_shape  # the modulus map keeps the shape
        self.measure = measure

    @property
    def linear(self) -> LinearOperator:
        """The linear operator ``B`` (exact adjoint ``B.adjoint`` / ``B.H``)."""
        return self.inner

    def magnitudes(self, y: torch.Tensor) -> torch.Tensor:
        """Convert data in this operator's units to Fourier magnitudes ``|B x|``.

        Intensities are clamped at zero before the square root (noisy data may dip below).
        """
        return torch.sqrt(torch.clamp(y, min=0.0)) if self.measure == "intensity" else y

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape}, " \
               f"measure={self.measure!r})"
