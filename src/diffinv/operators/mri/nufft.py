r"""Non-uniform FFT backends for :class:`~diffinv.operators.mri.NonCartesianMRI`.

Every backend implements the same centred, orthonormal type-2 transform (image -> k-space
points) and its exact adjoint (type 1, k-space points -> image):

.. math::
    y_j = \frac{1}{\sqrt{H W}} \sum_{n} x[n]\, e^{-i\, \omega_j \cdot (n - \lfloor N/2 \rfloor)},
    \qquad
    x[n] = \frac{1}{\sqrt{H W}} \sum_j y_j\, e^{+i\, \omega_j \cdot (n - \lfloor N/2 \rfloor)}

with ``omega_j = (omega_j0, omega_j1)`` in radians per pixel in ``[-pi, pi)`` along
(rows, columns).  At ``omega = 2 pi k / N`` this is exactly :func:`fft2c`.  sigpy uses
coordinates in k-space samples: ``coord = omega * N / (2 pi)``.

Backends (chosen once per operator; all differentiable with respect to the data, not the
trajectory):

* ``"finufft"`` — the Flatiron NUFFT (Barnett, Magland & af Klinteberg 2019, SIAM J. Sci.
  Comput. 41:C479) on CPU, wrapped in an autograd function whose backward is the other
  transform type.  Accuracy ``eps`` (default 1e-6 for complex64, 1e-12 for complex128).
  Type 1 with ``isign=+1`` is the exact transpose of type 2 with ``isign=-1`` (same
  spreading kernel and deconvolution), so the dot-product test passes at round-off level.
  Measured fastest on CPU at this accuracy (see ``benchmarks/mri_operators.py``).
* ``"torchkbnufft"`` — Kaiser-Bessel table interpolation (Muckley et al. 2020), pure torch,
  any device (the CUDA path); about 1e-3 relative accuracy with its defaults.
* ``"dft"`` — the exact non-uniform DFT in torch (``O(K (H + W))`` memory), for small problems
  and as the reference.

``"auto"`` picks finufft for CPU tensors when it is installed, torchkbnufft otherwise (and for
CUDA tensors), and the exact DFT when neither is available.
"""

from __future__ import annotations

import math

import torch

from ..finufft_plans import PlanCache

__all__ = ["NufftBackend", "DFTBackend", "FinufftBackend", "TorchKbNufftBackend", "make_backend"]


class NufftBackend:
    """Type-2 (``forward``) and type-1 (``adjoint``) transforms for a fixed trajectory.

    Parameters
    ----------
    omega : torch.Tensor
        ``(K, 2)`` real frequencies in radians per pixel.
    shape : tuple of int
        Image shape ``(H, W)``.
    """

    name = "base"

    def __init__(self, omega: torch.Tensor, shape: tuple[int, int]):
        self.omega = omega
        self.shape = (int(shape[0]), int(shape[1]))
        self.scale = 1.0 / math.sqrt(self.shape[0] * self.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``(..., H, W)`` complex -> ``(..., K)`` complex."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``(..., K)`` complex -> ``(..., H, W)`` complex."""
        raise NotImplementedError


# -- exact DFT --------------------------------------------------------------------------------
class DFTBackend(NufftBackend):
    """Exact separable non-uniform DFT (reference; small problems)."""

    name = "dft"

    def _factors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real = like.real.dtype
        om = self.omega.to(device=like.device, dtype=real)
        n0 = torch.arange(self.shape[0], device=like.device, dtype=real) - self.shape[0] // 2
        n1 = torch.arange(self.shape[1], device=like.device, dtype=real) - self.shape[1] // 2
        e0 = torch.exp(-1j * (om[:, 0:1] * n0[None, :]).to(like.dtype))  # (K, H)
        e1 = torch.exp(-1j * (om[:, 1:2] * n1[None, :]).to(like.dtype))  # (K, W)
        return e0, e1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0, e1 = self._factors(x)
        tmp = x @ e1.transpose(0, 1)  # (..., H, K)
        return (e0.transpose(0, 1) * tmp).sum(dim=-2) * self.scale

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        e0, e1 = self._factors(y)
        tmp = e0.conj().transpose(0, 1) * y.unsqueeze(-2)  # (..., H, K)
        return (tmp @ e1.conj()) * self.scale


# -- finufft ------------------------------------------------------------------------------------
class _Type2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, backend: FinufftBackend) -> torch.Tensor:
        ctx.backend = backend
        return backend._type2(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Type1.apply(grad, ctx.backend), None


class _Type1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, backend: FinufftBackend) -> torch.Tensor:
        ctx.backend = backend
        return backend._type1(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _Type2.apply(grad, ctx.backend), None


class FinufftBackend(NufftBackend):
    """finufft on CPU (data are copied to NumPy and back, so CUDA tensors round-trip).

    Parameters
    ----------
    eps : float, optional
        Requested relative accuracy; default 1e-6 (complex64) or 1e-12 (complex128).
    """

    name = "finufft"

    def __init__(self, omega: torch.Tensor, shape: tuple[int, int], eps: float | None = None):
        super().__init__(omega, shape)
        import finufft  # noqa: F401  (fail early when missing)

        self.eps = eps
        om = self.omega.detach().cpu().to(torch.float64).numpy()
        self._plans = PlanCache((om[:, 0], om[:, 1]), self.shape, eps=eps)

    def _type2(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        flat = x.detach().reshape(-1, *self.shape)
        arr = flat.cpu().resolve_conj().contiguous().numpy()
        out = torch.from_numpy(self._plans.type2(arr)).to(x.device) * self.scale
        return out.reshape(*lead, -1)

    def _type1(self, y: torch.Tensor) -> torch.Tensor:
        lead = y.shape[:-1]
        flat = y.detach().reshape(-1, y.shape[-1])
        arr = flat.cpu().resolve_conj().contiguous().numpy()
        out = torch.from_numpy(self._plans.type1(arr)).to(y.device) * self.scale
        return out.reshape(*lead, *self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Type2.apply(x, self)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _Type1.apply(y, self)


# -- torchkbnufft ----------------------------------------------------------------------------
class TorchKbNufftBackend(NufftBackend):
    """torchkbnufft (pure torch, CPU or CUDA); autograd through its own adjoint pair."""

    name = "torchkbnufft"

    def __init__(self, omega: torch.Tensor, shape: tuple[int, int], numpoints: int = 6):
        super().__init__(omega, shape)
        import torchkbnufft  # noqa: F401

        self.numpoints = int(numpoints)
        self._ops: dict = {}

    def _get(self, like: torch.Tensor):
        key = (like.dtype, str(like.device))
        if key not in self._ops:
            import torchkbnufft as tkbn

            grid = (2 * self.shape[0], 2 * self.shape[1])
            kw = dict(
                im_size=self.shape, grid_size=grid, numpoints=self.numpoints, dtype=like.dtype
            )
            fwd = tkbn.KbNufft(**kw).to(like.device)
            adj = tkbn.KbNufftAdjoint(**kw).to(like.device)
            om = self.omega.to(device=like.device, dtype=like.real.dtype)
            om = om.transpose(0, 1).contiguous()
            self._ops[key] = (fwd, adj, om)
        return self._ops[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fwd, _, om = self._get(x)
        lead = x.shape[:-2]
        flat = x.reshape(1, -1, *self.shape)
        out = fwd(flat, om) * self.scale
        return out.reshape(*lead, -1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        _, adj, om = self._get(y)
        lead = y.shape[:-1]
        flat = y.reshape(1, -1, y.shape[-1])
        out = adj(flat, om) * self.scale
        return out.reshape(*lead, *self.shape)


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_backend(
    name: str, omega: torch.Tensor, shape: tuple[int, int], eps: float | None = None
) -> NufftBackend:
    """Build the NUFFT backend ``name`` (``auto``, ``finufft``, ``torchkbnufft``, ``dft``)."""
    if name == "auto":
        if omega.device.type == "cpu" and _available("finufft"):
            name = "finufft"
        elif _available("torchkbnufft"):
            name = "torchkbnufft"
        elif _available("finufft"):
            name = "finufft"
        else:
            name = "dft"
    if name == "dft":
        return DFTBackend(omega, shape)
    if name == "finufft":
        if not _available("finufft"):
            raise ValueError(
                "backend: 'finufft' requested but the finufft package is not installed"
            )
        return FinufftBackend(omega, shape, eps=eps)
    if name == "torchkbnufft":
        if not _available("torchkbnufft"):
            raise ValueError(
                "backend: 'torchkbnufft' requested but the torchkbnufft package is not installed"
            )
        return TorchKbNufftBackend(omega, shape)
    raise ValueError(
        f"backend: expected one of 'auto', 'finufft', 'torchkbnufft', 'dft', got {name!r}"
    )
