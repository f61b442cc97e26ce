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

__all__ = ["fft2c", "ifft2c", "centring_signs"]

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


def centring_signs(
    shape: tuple[int, int], dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """+-1 patterns ``(s_in, s_out)`` that turn a plain FFT into :func:`fft2c`, or None.

    For even ``H`` and ``W``: ``fft2c(x) = s_out * fft2(s_in * x, norm="ortho")`` and
    ``ifft2c(y) = s_in * ifft2(s_out * y, norm="ortho")`` with ``s_in[n] = (-1)^(n0 + n1)``
    and ``s_out = (-1)^(H/2 + W/2) s_in``.  Operators fold these into coil maps and masks,
    replacing the two array rolls of every transform by nothing.  ``None`` for odd sizes.
    """
    h, w = int(shape[0]), int(shape[1])
    if h % 2 or w % 2:
        return None
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    s_in = (1 - 2 * ((i + j) % 2)).to(dtype)
    sign = -1.0 if (h // 2 + w // 2) % 2 else 1.0
    return s_in, sign * s_in
