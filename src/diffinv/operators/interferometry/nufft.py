r"""Non-uniform FFT evaluation of the visibility sum with finufft (CPU), autograd-aware.

With pixel centres ``l_j = ((N-1)/2 - j) d = -d (j - N/2) - d/2`` the visibility kernel
factorises into a uniform-mode sum over ``k = j - N/2 in [-N/2, N/2)``:

.. math::
    e^{2\pi i u l_j} = e^{-i\pi u d}\, e^{-i (2\pi u d) k},

so ``V = P e^{-i\pi (u+v) d}\, \mathrm{NUFFT}_2(x; 2\pi v d, 2\pi u d)`` (finufft type 2,
``isign = -1``, rows paired with ``v``, columns with ``u``); the adjoint is a type-1
transform with ``isign = +1``.  Accuracy ``eps`` (1e-12 in float64, 1e-6 in float32).
Barnett, Magland & af Klinteberg 2019, SIAM J. Sci. Comput. 41, C479 (finufft).
"""

from __future__ import annotations

import numpy as np
import torch

from ..finufft_plans import PlanCache

__all__ = ["finufft_available", "VisibilityNUFFT"]


def finufft_available() -> bool:
    """True when the ``finufft`` package can be imported."""
    try:
        import finufft  # noqa: F401
    except ImportError:
        return False
    return True


class VisibilityNUFFT:
    """The finufft pair for one (u, v) coverage, pixel size and pulse, with cached plans.

    Plans (points sorted, fine grid allocated) and the phase/pulse factor are built once per
    dtype and batch size and reused by every call, so the per-call cost is the transform.

    Parameters
    ----------
    uv : torch.Tensor
        float64 ``(M, 2)`` (u, v) in wavelengths.
    d : float
        Pixel size in radians.
    pulse : torch.Tensor
        float64 ``(M,)`` pixel response ``P(u, v)``.
    n : int
        Image side ``N``.
    """

    def __init__(self, uv: torch.Tensor, d: float, pulse: torch.Tensor, n: int):
        uv64 = uv.detach().cpu().to(torch.float64)
        xu = (2 * np.pi * d) * uv64[:, 0].numpy()
        xv = (2 * np.pi * d) * uv64[:, 1].numpy()
        self.n = int(n)
        self.plans = PlanCache((xv, xu), (self.n, self.n))
        ph = -np.pi * d * (uv64[:, 0] + uv64[:, 1])
        self._shift64 = torch.polar(pulse.detach().cpu().to(torch.float64), ph)
        self._shifts: dict[torch.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def shift(self, cdtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``P e^{-i pi (u + v) d}`` and its conjugate, complex ``(M,)`` NumPy (cached)."""
        if cdtype not in self._shifts:
            sh = self._shift64.to(cdtype).numpy()
            self._shifts[cdtype] = (sh, np.ascontiguousarray(sh.conj()))
        return self._shifts[cdtype]

    def type2(self, img: torch.Tensor) -> torch.Tensor:
        """Visibilities ``(B, M)`` of real CPU images ``(B, N, N)``, no autograd."""
        cdt = torch.complex64 if img.dtype == torch.float32 else torch.complex128
        arr = img.detach().numpy()
        c = np.empty(arr.shape, dtype=np.complex64 if cdt == torch.complex64 else np.complex128)
        c.real = arr
        c.imag = 0.0
        out = self.plans.type2(c)
        out *= self.shift(cdt)[0]
        return torch.from_numpy(out)

    def type1(self, y: torch.Tensor) -> torch.Tensor:
        """``Re(A^H y)``: real images ``(B, N, N)`` from CPU visibilities ``(B, M)``."""
        w = y.detach().resolve_conj().numpy() * self.shift(y.dtype)[1]
        return torch.from_numpy(self.plans.type1(w).real.copy())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Autograd-aware :meth:`type2` (its backward is :meth:`adjoint`)."""
        if img.requires_grad and torch.is_grad_enabled():
            return _Forward.apply(img, self)
        return self.type2(img)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Autograd-aware :meth:`type1` (its backward is :meth:`forward`)."""
        if y.requires_grad and torch.is_grad_enabled():
            return _Adjoint.apply(y, self)
        return self.type1(y)


class _Forward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, img, op):  # noqa: D102
        ctx.op = op
        return op.type2(img)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return _Adjoint.apply(grad, ctx.op), None


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, op):  # noqa: D102
        ctx.op = op
        return op.type1(y)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return _Forward.apply(grad, ctx.op), None
