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

from ...extras import require

__all__ = ["finufft_available", "nufft_forward", "nufft_adjoint"]


def finufft_available() -> bool:
    """True when the ``finufft`` package can be imported."""
    try:
        import finufft  # noqa: F401
    except ImportError:
        return False
    return True


def _eps(dtype) -> float:
    return 1e-6 if dtype in (torch.float32, torch.complex64) else 1e-12


def _points(uv: torch.Tensor, d: float):
    xu = (2 * np.pi * d) * uv[:, 0].detach().cpu().numpy().astype(np.float64)
    xv = (2 * np.pi * d) * uv[:, 1].detach().cpu().numpy().astype(np.float64)
    return xv, xu


def _type2(img: torch.Tensor, uv: torch.Tensor, d: float, shift: torch.Tensor) -> torch.Tensor:
    finufft = require("finufft", "vlbi", "NUFFT visibilities")

    xv, xu = _points(uv, d)
    cdt = np.complex64 if img.dtype == torch.float32 else np.complex128
    c = img.detach().cpu().numpy().astype(cdt)
    f = finufft.nufft2d2(
        xv.astype(c.real.dtype),
        xu.astype(c.real.dtype),
        c,
        isign=-1,
        eps=_eps(img.dtype),
        nthreads=torch.get_num_threads(),
    )
    out = torch.from_numpy(np.ascontiguousarray(f)).to(img.device)
    return out * shift.to(out.dtype)


def _type1(
    y: torch.Tensor, uv: torch.Tensor, d: float, shift: torch.Tensor, n: int
) -> torch.Tensor:
    finufft = require("finufft", "vlbi", "NUFFT visibilities")

    xv, xu = _points(uv, d)
    w = (y * shift.conj().to(y.dtype)).detach().cpu().numpy()
    real = w.real.dtype
    c = finufft.nufft2d1(
        xv.astype(real),
        xu.astype(real),
        w,
        (n, n),
        isign=1,
        eps=_eps(y.dtype),
        nthreads=torch.get_num_threads(),
    )
    return torch.from_numpy(np.ascontiguousarray(c.real)).to(y.device)


class _Forward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, img, uv, d, shift):  # noqa: D102
        ctx.save_for_backward(uv, shift)
        ctx.d, ctx.n = d, img.shape[-1]
        return _type2(img, uv, d, shift)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        uv, shift = ctx.saved_tensors
        return _Adjoint.apply(grad, uv, ctx.d, shift, ctx.n), None, None, None


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, uv, d, shift, n):  # noqa: D102
        ctx.save_for_backward(uv, shift)
        ctx.d = d
        return _type1(y, uv, d, shift, n)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        uv, shift = ctx.saved_tensors
        return _Forward.apply(grad, uv, ctx.d, shift), None, None, None, None


def _shift(uv: torch.Tensor, d: float, pulse: torch.Tensor, cdtype) -> torch.Tensor:
    ph = -np.pi * d * (uv[:, 0] + uv[:, 1])
    return torch.polar(pulse.to(torch.float64), ph.to(torch.float64)).to(cdtype)


def nufft_forward(
    img: torch.Tensor, uv: torch.Tensor, d: float, pulse: torch.Tensor
) -> torch.Tensor:
    """Visibilities ``(B, M)`` of real images ``(B, N, N)`` (see the module equation)."""
    cdtype = torch.complex64 if img.dtype == torch.float32 else torch.complex128
    return _Forward.apply(img, uv, d, _shift(uv, d, pulse, cdtype).to(img.device))


def nufft_adjoint(
    y: torch.Tensor, uv: torch.Tensor, d: float, pulse: torch.Tensor, n: int
) -> torch.Tensor:
    """``Re(A^H y)``: real images ``(B, N, N)`` from visibilities ``(B, M)``."""
    return _Adjoint.apply(y, uv, d, _shift(uv, d, pulse, y.dtype).to(y.device), n)
