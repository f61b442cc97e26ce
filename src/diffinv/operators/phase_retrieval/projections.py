r"""Projections and bookkeeping shared by the iterative Fourier phase-retrieval baselines.

Notation (Fienup 1982; Bauschke, Combettes & Luke 2002): ``z`` is the object on the padded
``M_h x M_w`` grid, ``m = sqrt(y)`` the measured Fourier magnitudes.

* Fourier-magnitude projection ``P_M z = F_c^{-1}(m \odot F_c z / |F_c z|)`` (where
  ``F_c z = 0`` the phase is taken as 0);
* object-domain projection ``P_S z = 1_S \odot c(z)`` onto the support ``S`` with the value
  constraint ``c``: identity (complex object), ``Re`` (real object) or ``max(Re, 0)``
  (real, non-negative object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..noise import check_finite
from ._common import as_complex, fft2c, ifft2c
from .fourier import FourierPhaseRetrieval

__all__ = [
    "PhaseRetrievalResult",
    "FourierProjections",
]


@dataclass
class PhaseRetrievalResult:
    """Output of a classical phase-retrieval algorithm.

    Attributes
    ----------
    x : torch.Tensor
        ``(batch, C, H, W)`` reconstructed object (support-projected, cropped to the object
        window for Fourier data).
    z : torch.Tensor
        The final iterate on the algorithm's own grid (the padded grid for Fourier data),
        usable as ``x0`` to continue.
    errors : torch.Tensor
        ``(n_iter, batch)`` relative data error per iteration (see each algorithm).
    info : dict
        Algorithm name and parameters.
    """

    x: torch.Tensor
    z: torch.Tensor
    errors: torch.Tensor
    info: dict = field(default_factory=dict)

    @property
    def final_error(self) -> torch.Tensor:
        """``(batch,)`` error of the last iteration."""
        return self.errors[-1]


class FourierProjections:
    """The projections ``P_M``, ``P_S`` for a :class:`FourierPhaseRetrieval` problem.

    Parameters
    ----------
    op : FourierPhaseRetrieval
    y : torch.Tensor
        ``(batch, C, M_h, M_w)`` data in ``op``'s units (intensities or amplitudes).
    support : torch.Tensor, optional
        Boolean mask broadcastable to ``(batch, C, M_h, M_w)``; default the object window.
    real, nonnegative : bool
        Value constraints of ``P_S`` (``nonnegative`` implies ``real``).
    """

    def __init__(
        self,
        op: FourierPhaseRetrieval,
        y: torch.Tensor,
        support: torch.Tensor | None = None,
        real: bool = True,
        nonnegative: bool = True,
    ):
        if not isinstance(op, FourierPhaseRetrieval):
            raise ValueError(f"op: expected a FourierPhaseRetrieval, got {type(op).__name__}")
        check_finite("y", y)
        if y.ndim != 4 or tuple(y.shape[1:]) != tuple(op.out_shape):
            raise ValueError(
                f"y: expected shape (batch, {', '.join(map(str, op.out_shape))}), "
                f"got {tuple(y.shape)}"
            )
        self.op = op
        self.mag = op.magnitudes(y)
        self.real = bool(real or nonnegative)
        self.nonnegative = bool(nonnegative)
        if support is None:
            support = op.support(device=y.device)
        support = torch.as_tensor(support, device=y.device).to(torch.bool)
        try:
            torch.broadcast_shapes(support.shape, y.shape)
        except RuntimeError:
            raise ValueError(
                f"support: expected a mask broadcastable to {tuple(y.shape)}, "
                f"got {tuple(support.shape)}"
            ) from None
        self.support = support
        self.cdtype = as_complex(y[..., :0]).dtype

    def magnitude(self, z: torch.Tensor) -> torch.Tensor:
        """``P_M z``; returns a complex tensor."""
        u = fft2c(as_complex(z))
        a = u.abs()
        phase = torch.where(a > 0, u / torch.where(a > 0, a, 1.0), torch.ones_like(u))
        return ifft2c(self.mag * phase)

    def constrain(self, z: torch.Tensor) -> torch.Tensor:
        """Value constraint ``c(z)`` without the support."""
        if self.nonnegative:
            return torch.clamp(z.real, min=0.0).to(self.cdtype)
        if self.real:
            return z.real.to(self.cdtype)
        return z

    def object(self, z: torch.Tensor) -> torch.Tensor:
        """``P_S z``."""
        return torch.where(self.support, self.constrain(z), torch.zeros_like(z))

    def feasible(self, z: torch.Tensor) -> torch.Tensor:
        """Boolean mask of pixels where ``z`` already meets the object constraints
        (inside the support and, when ``nonnegative``, with ``Re z >= 0``)."""
        ok = self.support.expand(z.shape)
        if self.nonnegative:
            ok = ok & (z.real >= 0)
        return ok

    def error(self, z: torch.Tensor) -> torch.Tensor:
        """Relative Fourier error ``|| |F_c P_S z| - m || / ||m||`` per item."""
        r = fft2c(self.object(z)).abs() - self.mag
        num = r.reshape(r.shape[0], -1).norm(dim=1)
        return num / self.mag.reshape(r.shape[0], -1).norm(dim=1).clamp(min=1e-300)

    def initial(
        self, x0: torch.Tensor | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Starting iterate on the padded grid.

        ``x0`` may be an object ``(batch, C, H, W)`` (it is zero-padded) or a padded-grid
        iterate ``(batch, C, M_h, M_w)``; default: the data magnitudes with uniformly random
        Fourier phases, projected on the object constraints.
        """
        shape = self.mag.shape
        if x0 is not None:
            check_finite("x0", x0)
            if tuple(x0.shape[-2:]) == tuple(self.op.image_size) and x0.ndim == 4:
                z = self.op.pad(as_complex(x0).to(self.cdtype))
            elif tuple(x0.shape[-2:]) == tuple(shape[-2:]) and x0.ndim == 4:
                z = as_complex(x0).to(self.cdtype)
            else:
                raise ValueError(
                    f"x0: expected (batch, C, H, W) = {(shape[0], shape[1], *self.op.image_size)}"
                    f" or the padded grid {tuple(shape)}, got {tuple(x0.shape)}"
                )
            return z.expand(shape).clone()
        theta = 2 * math.pi * torch.rand(
            shape, dtype=self.mag.dtype, device=self.mag.device, generator=generator
        )
        return self.object(ifft2c(torch.polar(self.mag, theta)))

    def result(
        self, z: torch.Tensor, errors: list[torch.Tensor], info: dict
    ) -> PhaseRetrievalResult:
        """Package the final iterate."""
        obj = self.object(z)
        x = self.op.crop(obj)
        if self.real:
            x = x.real
        return PhaseRetrievalResult(x=x, z=z, errors=torch.stack(errors), info=info)


def check_iterations(n_iter: int) -> None:
    """Raise ``ValueError`` unless ``n_iter`` is a positive integer."""
    if not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter: expected a positive integer, got {n_iter!r}")


def check_beta(beta: float, lo: float = 0.0, hi: float = 1.0) -> None:
    """Raise ``ValueError`` unless ``lo < beta <= hi``."""
    if not (lo < float(beta) <= hi):
        raise ValueError(f"beta: expected a value in ({lo}, {hi}], got {beta!r}")
