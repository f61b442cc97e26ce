r"""The visibility operator: image (Jy per pixel) -> complex visibilities (Jy).

.. math::
    V_k = P(u_k, v_k) \sum_{i,j} x_{ij}\, e^{+2\pi i (u_k l_j + v_k m_i)}

with the image ``x`` of shape ``(batch, 1, N, N)`` in Jy per pixel, row ``i`` from north
(top, ``i = 0``) to south, column ``j`` from east (left, ``j = 0``) to west; pixel centres
at ``l_j = ((N - 1)/2 - j) * d`` (RA offset, positive to the east) and
``m_i = ((N - 1)/2 - i) * d`` (Dec offset, positive to the north), ``d = fov / N`` in
radians.  With ``(u, v)`` as stored in the EHT UVFITS files (baseline ``r_1 - r_2`` for
``V_12``, see :mod:`.observation`) the kernel is ``exp(+2 pi i (u l + v m))``; this is the
textbook ``exp(-2 pi i b.s / lambda)`` of Thompson, Moran & Swenson (eq. 3.7) with the
baseline ``b = r_2 - r_1``, and the convention eht-imaging adopted to match the EHT
correlator data.  The tests check it on the real M87 data: a crescent bright in the south
(as published, EHT Collaboration 2019, Paper IV) fits the closure phases far better than
the same crescent bright in the north.  ``P`` is the Fourier transform of the pixel
response: ``"box"`` (``sinc(u d) sinc(v d)``, exact for a piecewise-constant image),
``"triangle"`` (``sinc^2``, bilinear interpolation) or ``"delta"`` (point sources).

The exact DFT is separable: ``V = P * sum_i E^v_{k i} sum_j x_{ij} E^u_{k j}``, costing
``O(B M N^2)`` time and ``O(B M N)`` memory, so it handles a few thousand visibilities of a
256 x 256 image.  The adjoint (for the real inner product on the real image) is
``x_ij = Re( sum_k conj(P_k E^v_{ki} E^u_{kj}) y_k )``; both are evaluated with real
matrix products (cos/sin factors cached per dtype and device).  For large problems the
finufft type-2/type-1 pair of :mod:`.nufft` gives the same sums to 1e-12 (``method``).
"""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator
from .nufft import VisibilityNUFFT, finufft_available
from .observation import Observation

__all__ = ["Visibilities", "UAS_TO_RAD", "pixel_coordinates"]

UAS_TO_RAD = math.pi / (180.0 * 3600.0 * 1e6)

_PULSES = ("box", "triangle", "delta")


def pixel_coordinates(image_size: int, fov_uas: float) -> torch.Tensor:
    """Offsets of pixel centres from the image centre, radians, float64 ``(N,)``.

    Entry ``k`` is ``((N - 1)/2 - k) * fov / N``: the RA offset of column ``k`` (east
    positive) and the Dec offset of row ``k`` (north positive).
    """
    d = fov_uas * UAS_TO_RAD / image_size
    return ((image_size - 1) / 2.0 - torch.arange(image_size, dtype=torch.float64)) * d


class Visibilities(LinearOperator):
    """Complex visibilities of a real image sampled at an observation's (u, v) points.

    Parameters
    ----------
    observation : Observation or torch.Tensor
        The sampling; an ``(M, 2)`` float tensor of (u, v) in wavelengths also works.
    image_size : int
        ``N`` of the ``(batch, 1, N, N)`` image.
    fov_uas : float
        Field of view (side of the image) in micro-arcseconds.
    pulse : str
        Pixel response: ``"box"`` (default), ``"triangle"`` or ``"delta"``.
    method : str
        ``"dft"`` (exact, any device), ``"nufft"`` (finufft on CPU tensors, accuracy 1e-12
        in float64 and 1e-6 in float32; CUDA inputs fall back to the DFT) or ``"auto"``
        (default: NUFFT when ``N^2 M > 2e7`` and finufft is installed).

    Notes
    -----
    Input real ``(B, 1, N, N)`` (float32 or float64), output complex ``(B, M)`` of the
    matching precision; the phases are computed in float64 and then cast.  Works on any
    device after :meth:`to`.
    """

    #: ``method="auto"`` uses the NUFFT (CPU tensors) when ``N^2 M`` exceeds this: with
    #: cached plans the finufft pair is faster than the exact DFT from about 32 x 32 pixels
    #: with 1,000 visibilities up (``benchmarks/interferometry.py``).
    auto_nufft_min_work: float = 1e6

    def __init__(
        self,
        observation: Observation | torch.Tensor,
        image_size: int,
        fov_uas: float,
        pulse: str = "box",
        method: str = "auto",
    ):
        if isinstance(observation, Observation):
            uv = observation.uv
        elif (
            isinstance(observation, torch.Tensor)
            and observation.ndim == 2
            and observation.shape[1] == 2
        ):
            uv = observation.to(torch.float64)
        else:
            raise ValueError(
                "observation: expected an Observation or an (M, 2) tensor of (u, v) in wavelengths"
            )
        if not (isinstance(image_size, int) and image_size > 0):
            raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
        if not (fov_uas > 0 and math.isfinite(fov_uas)):
            raise ValueError(
                f"fov_uas: expected a positive field of view in micro-arcseconds, got {fov_uas!r}"
            )
        if pulse not in _PULSES:
            raise ValueError(f"pulse: expected one of {_PULSES}, got {pulse!r}")
        if method not in ("auto", "dft", "nufft"):
            raise ValueError(f"method: expected 'auto', 'dft' or 'nufft', got {method!r}")
        if method == "nufft" and not finufft_available():
            raise ValueError("method: 'nufft' needs the finufft package (pip install finufft)")
        if method == "auto":
            big = image_size * image_size * uv.shape[0] > self.auto_nufft_min_work
            method = "nufft" if big and finufft_available() else "dft"
        self.method = method
        if not bool(torch.isfinite(uv).all()):
            raise ValueError("observation: (u, v) contain NaN or Inf")
        self.uv = uv.clone()
        self.image_size = image_size
        self.fov_uas = float(fov_uas)
        self.pulse = pulse
        self.coords = pixel_coordinates(image_size, fov_uas).to(uv.device)
        self.in_shape = (1, image_size, image_size)
        self.out_shape = (uv.shape[0],)

    @property
    def pixel_size_rad(self) -> float:
        """Pixel side in radians."""
        return self.fov_uas * UAS_TO_RAD / self.image_size

    def pulse_response(self) -> torch.Tensor:
        """``P(u_k, v_k)``, float64 ``(M,)``."""
        d = self.pixel_size_rad
        u, v = self.uv[:, 0], self.uv[:, 1]
        if self.pulse == "delta":
            return torch.ones_like(u)
        p = torch.sinc(u * d) * torch.sinc(v * d)
        return p * p if self.pulse == "triangle" else p

    def _factors(self, real_dtype: torch.dtype, device: torch.device):
        """``cos``/``sin`` of the column phases ``(M, N)`` and the row factor ``(M, N)``.

        Cached per (dtype, device); phases are evaluated in float64 and then cast.
        """
        key = (real_dtype, str(device), self.uv.data_ptr())
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cdtype = torch.complex64 if real_dtype == torch.float32 else torch.complex128
            uv = self.uv.to(device)
            coords = self.coords.to(device)
            p = self.pulse_response().to(device)
            ph_u = 2 * math.pi * uv[:, :1] * coords[None]
            ph_v = 2 * math.pi * uv[:, 1:] * coords[None]
            ev = torch.polar(p[:, None].expand_as(ph_v).contiguous(), ph_v)
            cache.clear()
            cache[key] = (
                torch.cos(ph_u).to(real_dtype),
                torch.sin(ph_u).to(real_dtype),
                ev.to(cdtype),
            )
        return cache[key]

    def nufft(self) -> VisibilityNUFFT:
        """The finufft pair of this coverage with its cached plans (built on first use)."""
        key = self.uv.data_ptr()
        cached = self.__dict__.get("_nufft")
        if cached is None or cached[0] != key:
            pair = VisibilityNUFFT(
                self.uv, self.pixel_size_rad, self.pulse_response(), self.image_size
            )
            cached = self.__dict__["_nufft"] = (key, pair)
        return cached[1]

    def _check_x(self, x: torch.Tensor) -> None:
        n = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, n, n):
            raise ValueError(
                f"x: expected an image batch of shape (batch, 1, {n}, {n}), got {tuple(x.shape)}"
            )
        if x.is_complex():
            raise ValueError("x: expected a real image in Jy per pixel, got a complex tensor")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` real -> ``(B, M)`` complex visibilities, Jy."""
        self._check_x(x)
        real = torch.float32 if x.dtype == torch.float32 else torch.float64
        img = x[:, 0].to(real)
        if self.method == "nufft" and x.device.type == "cpu":
            return self.nufft().forward(img)
        cu, su, ev = self._factors(real, x.device)
        # sum over columns with real matmuls: T[b, i, k] = sum_j x_ij exp(2 pi i u_k l_j)
        t = torch.complex(img @ cu.T, img @ su.T)  # (B, N, M)
        return (t * ev.T[None]).sum(1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` complex -> ``(B, 1, N, N)`` real: ``Re(A^H y)``."""
        if y.ndim != 2 or y.shape[1] != self.out_shape[0]:
            raise ValueError(
                f"y: expected shape (batch, {self.out_shape[0]}), got {tuple(y.shape)}"
            )
        real = y.real.dtype if y.is_complex() else y.dtype
        real = torch.float32 if real == torch.float32 else torch.float64
        if self.method == "nufft" and y.device.type == "cpu":
            cdt = torch.complex64 if real == torch.float32 else torch.complex128
            return self.nufft().adjoint(y.to(cdt)).unsqueeze(1)
        cu, su, ev = self._factors(real, y.device)
        w = ev.conj()[None] * y.to(ev.dtype)[:, :, None]  # (B, M, N_rows)
        # Re(conj(E^u) w) = cos * Re w + sin * Im w, summed over k with real matmuls
        x = w.real.transpose(1, 2) @ cu + w.imag.transpose(1, 2) @ su
        return x.unsqueeze(1)

    def __repr__(self) -> str:
        return (
            f"Visibilities({self.out_shape[0]} (u,v) points, "
            f"{self.image_size}x{self.image_size} image, "
            f"fov={self.fov_uas:g} uas, pulse={self.pulse}, method={self.method})"
        )
