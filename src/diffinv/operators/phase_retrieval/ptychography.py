r"""Far-field (Fraunhofer) ptychography with a known probe.

A probe ``p`` of ``P x Q`` pixels illuminates the object ``O`` (``H x W``, complex
transmission) at scan positions ``r_k = (row_k, col_k)`` (whole pixels, top-left corner of the
probe window on the object grid).  Each exit wave is propagated to the far field:

.. math::

    y_k = |F_c\, Z\, (p \odot S_k O)|^2,\qquad k = 1, \dots, K

with ``S_k`` the extraction of the window at ``r_k``, ``Z`` optional zero padding to the
``M x N`` detector and ``F_c`` the centred orthonormal DFT.  The linear part ``B`` has the
exact adjoint ``B^H u = sum_k S_k^T (conj(p) \odot Z^T F_c^{-1} u_k)`` (overlap-add).

Subpixel positions are not supported: round them first (``positions`` must be integers).
"""

from __future__ import annotations

import torch

from ..base import LinearOperator
from ._common import IntensityOperator, as_complex, check_image, fft2c, ifft2c
from .fourier import pad_widths, size2

__all__ = ["FarFieldPtychography", "PtychographyLinear", "raster_positions", "disk_probe"]


def raster_positions(
    object_size: int | tuple[int, int], probe_size: int | tuple[int, int], step: int
) -> torch.Tensor:
    """Regular raster scan: ``(K, 2)`` int64 top-left corners covering the object.

    The last row/column is clamped so the probe window always ends at the object edge.
    """
    (h, w), (p, q) = size2(object_size, "object_size"), size2(probe_size, "probe_size")
    if step < 1:
        raise ValueError(f"step: expected a positive integer, got {step!r}")
    if p > h or q > w:
        raise ValueError(f"probe_size: {(p, q)} larger than the object {(h, w)}")

    def axis(n: int, m: int) -> list[int]:
        pos = list(range(0, n - m + 1, step))
        if pos[-1] != n - m:
            pos.append(n - m)
        return pos

    rows, cols = axis(h, p), axis(w, q)
    return torch.tensor([(r, c) for r in rows for c in cols], dtype=torch.int64)


def disk_probe(
    size: int, radius: float, defocus: float = 0.0, dtype: torch.dtype = torch.complex128
) -> torch.Tensor:
    r"""A soft-edged disk probe with an optional quadratic (defocus) phase.

    ``p(r) = s(r) exp(i * defocus * |r|^2 / radius^2)`` with ``s`` a disk of ``radius`` pixels
    whose edge is smoothed over one pixel.  Returns ``(size, size)`` complex.
    """
    c = (size - 1) / 2.0
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64) - c,
        torch.arange(size, dtype=torch.float64) - c,
        indexing="ij",
    )
    rr = torch.sqrt(yy**2 + xx**2)
    amp = torch.clamp(radius + 0.5 - rr, 0.0, 1.0)
    return torch.polar(amp, defocus * rr**2 / radius**2).to(dtype)


class PtychographyLinear(LinearOperator):
    r"""The linear part ``B O = (F_c Z (p \odot S_k O))_k`` of far-field ptychography.

    Input ``(batch, 1, H, W)``; output ``(batch, K, M, N)`` complex.
    """

    def __init__(
        self,
        probe: torch.Tensor,
        positions: torch.Tensor,
        object_size: tuple[int, int],
        detector_size: tuple[int, int] | None = None,
    ):
        if not isinstance(probe, torch.Tensor) or probe.ndim != 2:
            raise ValueError("probe: expected a (P, Q) tensor")
        if not bool(torch.isfinite(probe).all()):
            raise ValueError("probe: contains NaN or Inf")
        pos = torch.as_tensor(positions)
        if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 1:
            raise ValueError(f"positions: expected a (K, 2) array, got shape {tuple(pos.shape)}")
        if pos.is_floating_point():
            if not bool((pos == pos.round()).all()):
                raise ValueError("positions: expected whole pixels; round subpixel positions")
        pos = pos.to(torch.int64)
        h, w = size2(object_size, "object_size")
        p, q = probe.shape
        bad = (pos[:, 0] < 0) | (pos[:, 1] < 0) | (pos[:, 0] + p > h) | (pos[:, 1] + q > w)
        if bool(bad.any()):
            k = int(torch.nonzero(bad)[0, 0])
            raise ValueError(
                f"positions: window {k} at {tuple(pos[k].tolist())} with probe {(p, q)} "
                f"leaves the object {(h, w)}"
            )
        m, n = size2(detector_size if detector_size is not None else (p, q), "detector_size")
        if m < p or n < q:
            raise ValueError(f"detector_size: expected at least the probe size {(p, q)}")
        self.probe = as_complex(probe)
        self.positions = pos
        self.object_size, self.probe_size, self.detector_size = (h, w), (p, q), (m, n)
        self.pad_h, self.pad_w = pad_widths(p, m), pad_widths(q, n)
        # flat object indices of every window pixel: (K, P, Q)
        rows = pos[:, 0, None, None] + torch.arange(p)[None, :, None]
        cols = pos[:, 1, None, None] + torch.arange(q)[None, None, :]
        self.index = rows * w + cols
        self.in_shape = (1, h, w)
        self.out_shape = (pos.shape[0], m, n)

    @property
    def n_positions(self) -> int:
        return self.positions.shape[0]

    def extract(self, obj: torch.Tensor) -> torch.Tensor:
        """Object windows ``S_k O``: ``(batch, 1, H, W)`` -> ``(batch, K, P, Q)``."""
        flat = obj.reshape(obj.shape[0], -1)
        idx = self.index.to(obj.device)
        return flat[:, idx]

    def overlap_add(self, windows: torch.Tensor) -> torch.Tensor:
        """``sum_k S_k^T w_k``: ``(batch, K, P, Q)`` -> ``(batch, 1, H, W)``."""
        b = windows.shape[0]
        h, w = self.object_size
        out = windows.new_zeros(b, h * w)
        idx = self.index.to(windows.device).reshape(-1)
        out = out.index_add(1, idx, windows.reshape(b, -1))
        return out.reshape(b, 1, h, w)

    def _probe_like(self, t: torch.Tensor) -> torch.Tensor:
        return self.probe.to(device=t.device, dtype=t.dtype)

    def propagate(self, exit_waves: torch.Tensor) -> torch.Tensor:
        """Far-field propagation ``F_c Z``: ``(..., P, Q)`` -> ``(..., M, N)``."""
        (t, b), (lft, r) = self.pad_h, self.pad_w
        return fft2c(torch.nn.functional.pad(exit_waves, (lft, r, t, b)))

    def back_propagate(self, u: torch.Tensor) -> torch.Tensor:
        """``Z^T F_c^{-1}`` (adjoint and left inverse of :meth:`propagate`)."""
        (t, _), (lft, _) = self.pad_h, self.pad_w
        p, q = self.probe_size
        return ifft2c(u)[..., t:t + p, lft:lft + q]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("x", x, self.in_shape)
        x = as_complex(x)
        return self.propagate(self._probe_like(x) * self.extract(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        check_image("y", y, self.out_shape)
        z = self.back_propagate(as_complex(y))
        return self.overlap_add(self._probe_like(z).conj() * z)


class FarFieldPtychography(IntensityOperator):
    r"""Far-field ptychographic intensities (see the module docstring).

    Parameters
    ----------
    probe : torch.Tensor
        ``(P, Q)`` complex (or real) known probe, e.g. :func:`disk_probe`.
    positions : array-like
        ``(K, 2)`` whole-pixel ``(row, col)`` top-left corners of the probe window on the
        object grid, e.g. :func:`raster_positions`.
    object_size : int or (H, W)
        Object grid in pixels; every window must lie inside it.
    detector_size : int or (M, N), optional
        Detector grid (zero-padded exit wave); defaults to the probe size.
    measure : {"intensity", "amplitude"}

    Shapes
    ------
    ``x``: ``(batch, 1, H, W)`` complex transmission (real accepted);
    ``op(x)``: ``(batch, K, M, N)`` real.
    """

    def __init__(
        self,
        probe: torch.Tensor,
        positions: torch.Tensor,
        object_size: int | tuple[int, int],
        *,
        detector_size: int | tuple[int, int] | None = None,
        measure: str = "intensity",
    ):
        det = None if detector_size is None else size2(detector_size, "detector_size")
        super().__init__(
            PtychographyLinear(probe, positions, size2(object_size, "object_size"), det),
            measure,
        )

    @property
    def probe(self) -> torch.Tensor:
        return self.linear.probe

    @property
    def positions(self) -> torch.Tensor:
        return self.linear.positions

    def coverage(self) -> torch.Tensor:
        """``sum_k S_k^T |p|^2``: ``(H, W)`` illumination (zero where never illuminated)."""
        p2 = (self.probe.abs() ** 2)[None, None].expand(1, self.linear.n_positions, -1, -1)
        return self.linear.overlap_add(p2.contiguous())[0, 0]

