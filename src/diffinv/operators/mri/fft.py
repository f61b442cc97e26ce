"""Orthonormal centred 2-D FFT used by every MRI operator.

The image index ``n`` and the k-space index ``k`` both run over ``-N//2 ... N - N//2 - 1``
with the zero in the array centre (``N // 2``):

.. math:: \\hat x[k] = \\frac{1}{\\sqrt{N_1 N_2}} \\sum_n x[n]\\, e^{-2\\pi i\\, k\\cdot n / N}

which is ``fftshift(fft2(ifftshift(x), norm="ortho"))``.  This is sigpy's and fastMRI's
convention; at the grid frequencies ``omega = 2 pi k / N`` (radians per pixel) it equals the
non-Cartesian NUFFT of :mod:`diffinv.operators.mri.nufft`.
"""

from __future__ import annotations

import torch

__all__ = ["fft2c", "ifft2c"]

_DIMS = (-2, -1)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two axes.

    Parameters
    ----------
    x : torch.Tensor
        Complex tensor ``(..., H, W)``.

    Returns
    -------
    torch.Tensor
        k-space ``(..., H, W)`` with DC at index ``(H // 2, W // 2)``.
    """
    x = torch.fft.ifftshift(x, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.fft2(x, dim=_DIMS, norm="ortho"), dim=_DIMS)


def ifft2c(y: torch.Tensor) -> torch.Tensor:
    """Inverse (= adjoint) of :func:`fft2c` over the last two axes."""
    y = torch.fft.ifftshift(y, dim=_DIMS)
    return torch.fft.fftshift(torch.fft.ifft2(y, dim=_DIMS, norm="ortho"), dim=_DIMS)
