r"""Orthonormal bases ``V`` of MCGdiff's coordinates, applied without an ``n x n`` matrix
where the operator's structure allows it.

MCGdiff moves particles in the coordinates ``xbar = V^T x`` of the whitened operator's right
singular vectors (:mod:`diffinv.solvers.smc.svd_likelihood`).  Three representations of
``V``, all with the same interface (``coords``, ``expand``, ``observed``, ``matrix``, ``to``;
``coords(x, width)`` gives only the first ``width`` coordinates, at that cost for a dense
``V``):

* :class:`DenseBasis`: ``V`` as a matrix, ``(n, n)`` orthogonal or, for the economy
  factorisations, ``(n, r)`` with orthonormal columns (the observed range ``V_r`` only).
  ``coords`` and ``expand`` cost ``O(n^2)`` (``O(n r)``) per particle.
* :class:`PermutationBasis` (diagonal normal matrix: masks, inpainting, pixel-wise gains):
  column ``j`` is the unit vector ``e_{perm[j]}``, so ``xbar = x[perm]``; ``O(n)``.
* :class:`FourierBasis` (block-circulant normal matrix: masked unitary Fourier sampling with
  equal noise, periodic convolutions): the real orthonormal 2-D Fourier basis, a cosine for
  each self-conjugate frequency and a cosine and a sine for one representative of every
  conjugate pair (:func:`~diffinv.solvers.smc.factorisation.fourier_columns`).  With
  ``F(k) = sum_i x_i exp(-2 pi i <i, k>)`` (``torch.fft.fft2``), the cosine coordinate is
  ``c_k Re F(k)`` and the sine coordinate ``-c_k Im F(k)``, ``c_k = sqrt(2/n)`` (``1/sqrt(n)``
  for self-conjugate ``k``); ``expand`` is the inverse, one ``ifft2``: ``O(n log n)``.

The structured bases never hold an ``n x n`` array, so MCGdiff's set-up and per-step cost on
such operators grow as ``n log n`` instead of ``n^2`` (``matrix()`` builds the dense ``V`` on
request, for tests and small problems).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["DenseBasis", "PermutationBasis", "FourierBasis"]


@dataclass
class DenseBasis:
    """``V`` as a float64 matrix: ``(n, n)`` orthogonal, or ``(n, r)`` orthonormal columns."""

    v: torch.Tensor

    @property
    def complete(self) -> bool:
        """``True`` for ``(n, n)``; ``False`` for the economy ``V_r``."""
        return self.v.shape[0] == self.v.shape[1]

    def coords(self, x: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """``x @ V``: ``(N, n)`` float64 images to ``(N, n)`` (or ``(N, r)``) coordinates;
        ``width``: the first ``width`` coordinates only (``O(N n width)``)."""
        return x @ (self.v if width is None else self.v[:, :width])

    def expand(self, xbar: torch.Tensor) -> torch.Tensor:
        """``xbar @ V^T``: coordinates ``(N, width)`` to images ``(N, n)``."""
        return xbar @ self.v.T

    def project_out(self, w: torch.Tensor) -> torch.Tensor:
        """``w (I - V V^T)``: the part of ``w`` ``(N, n)`` outside the columns' span."""
        return w - (w @ self.v) @ self.v.T

    def observed(self, r: int) -> torch.Tensor:
        """The first ``r`` columns ``(n, r)``."""
        return self.v[:, :r].contiguous()

    @property
    def nbytes(self) -> int:
        """Memory held by the basis."""
        return self.v.numel() * self.v.element_size()

    def matrix(self) -> torch.Tensor:
        """``V`` itself."""
        return self.v

    def to(self, device: torch.device | str) -> DenseBasis:
        return DenseBasis(self.v.to(device))


@dataclass
class PermutationBasis:
    """Unit vectors in the order ``perm`` (int64 ``(n,)``): column ``j`` is ``e_{perm[j]}``."""

    perm: torch.Tensor
    complete: bool = True

    def coords(self, x: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """``x[:, perm]`` ``(N, n)`` (``width``: the first ``width`` coordinates only)."""
        return x[:, self.perm if width is None else self.perm[:width]]

    def expand(self, xbar: torch.Tensor) -> torch.Tensor:
        """The images ``(N, n)`` with ``x[:, perm] = xbar``."""
        out = torch.empty_like(xbar)
        out[:, self.perm] = xbar
        return out

    def observed(self, r: int) -> torch.Tensor:
        """The first ``r`` columns as a dense ``(n, r)`` matrix."""
        n = self.perm.numel()
        v = torch.zeros(n, r, dtype=torch.float64, device=self.perm.device)
        v[self.perm[:r], torch.arange(r, device=self.perm.device)] = 1.0
        return v

    @property
    def nbytes(self) -> int:
        """Memory held by the basis (the permutation)."""
        return self.perm.numel() * self.perm.element_size()

    def matrix(self) -> torch.Tensor:
        """The dense permutation matrix ``(n, n)``."""
        return self.observed(self.perm.numel())

    def to(self, device: torch.device | str) -> PermutationBasis:
        return PermutationBasis(self.perm.to(device))


@dataclass
class FourierBasis:
    """The real orthonormal Fourier basis of ``h x w`` images, columns in a given order.

    Attributes
    ----------
    h, w : int
        Image plane (``n = h w``; images flattened row-major).
    freq : torch.Tensor
        int64 ``(n,)``: flat frequency index ``k1 w + k2`` of each column.
    is_sine : torch.Tensor
        bool ``(n,)``: sine (else cosine) column.
    """

    h: int
    w: int
    freq: torch.Tensor
    is_sine: torch.Tensor
    complete: bool = True

    def __post_init__(self) -> None:
        n = self.h * self.w
        k1, k2 = self.freq // self.w, self.freq % self.w
        self_conj = ((2 * k1) % self.h == 0) & ((2 * k2) % self.w == 0)
        norm = torch.full(self.freq.shape, math.sqrt(2.0 / n), dtype=torch.float64,
                          device=self.freq.device)
        norm[self_conj] = 1.0 / math.sqrt(n)
        self.norm = norm
        self.cos_cols = torch.nonzero(~self.is_sine).reshape(-1)
        self.sin_cols = torch.nonzero(self.is_sine).reshape(-1)

    def coords(self, x: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """``V^T x`` per row: ``(N, n)`` float64 images to ``(N, n)`` coordinates (FFT);
        ``width``: the first ``width`` coordinates only."""
        cols = slice(None) if width is None else slice(0, width)
        spec = torch.fft.fft2(x.reshape(x.shape[0], self.h, self.w)).reshape(x.shape[0], -1)
        spec = spec[:, self.freq[cols]]
        return torch.where(self.is_sine[cols], -spec.imag, spec.real) * self.norm[cols]

    def expand(self, xbar: torch.Tensor) -> torch.Tensor:
        """``V xbar`` per row: ``(N, n)`` coordinates to ``(N, n)`` images (inverse FFT)."""
        n = self.h * self.w
        a = xbar * self.norm
        re = torch.zeros_like(a)
        im = torch.zeros_like(a)
        re[:, self.freq[self.cos_cols]] = a[:, self.cos_cols]
        im[:, self.freq[self.sin_cols]] = -a[:, self.sin_cols]
        spec = torch.complex(re, im).reshape(-1, self.h, self.w)
        return (torch.fft.ifft2(spec).real * n).reshape(xbar.shape[0], n)

    def observed(self, r: int) -> torch.Tensor:
        """The first ``r`` columns as a dense ``(n, r)`` matrix."""
        eye = torch.eye(self.h * self.w, r, dtype=torch.float64, device=self.freq.device)
        return self.expand(eye.T).T.contiguous()

    @property
    def nbytes(self) -> int:
        """Memory held by the basis (frequencies, kinds, norms, column lists)."""
        return sum(t.numel() * t.element_size() for t in
                   (self.freq, self.is_sine, self.norm, self.cos_cols, self.sin_cols))

    def matrix(self) -> torch.Tensor:
        """The dense ``(n, n)`` basis."""
        return self.observed(self.h * self.w)

    def to(self, device: torch.device | str) -> FourierBasis:
        return FourierBasis(self.h, self.w, self.freq.to(device), self.is_sine.to(device))
