r"""Filtered back-projection (FBP) for parallel- and fan-beam data.

Parallel beam (A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*,
IEEE Press 1988, ch. 3.3):

.. math:: f(\mathbf x) = \int_0^\pi (p_\theta * h)(\mathbf x \cdot e_\theta)\,d\theta

with the band-limited ramp :math:`h` discretised in space (Kak & Slaney eq. 3.61:
:math:`h_0 = 1/(4\tau^2)`, :math:`h_n = -1/(n\pi\tau)^2` for odd ``n``, 0 for even ``n``),
applied by zero-padded FFT convolution (which avoids the DC bias of sampling :math:`|\omega|`
directly) and optionally apodised by a window :math:`W(\nu)` of the normalised frequency
:math:`\nu \in [-1/2, 1/2]` cycles per detector cell:

* ``"ramp"``: :math:`W = 1`;
* ``"shepp-logan"``: :math:`W = \mathrm{sinc}(\nu) = \sin(\pi\nu) / (\pi\nu)`;
* ``"cosine"``: :math:`W = \cos(\pi\nu)`;
* ``"hann"``: :math:`W = \cos^2(\pi\nu) = (1 + \cos 2\pi\nu) / 2`.

Fan beam with a flat detector (Kak & Slaney ch. 3.4.2, equally spaced collinear detectors):
data are rescaled to a virtual detector through the rotation axis (coordinate
:math:`s = u R_{so} / (R_{so} + R_{od})`), pre-weighted by :math:`R_{so} / \sqrt{R_{so}^2 + s^2}`,
filtered with :math:`h / 2` and back-projected over the full :math:`2\pi` with the distance
weight :math:`1/U^2`, :math:`U = (R_{so} + \mathbf x\cdot d_\beta) / R_{so}`.  Curved
(equiangular) data are first resampled onto the virtual flat detector.  Short scans (no Parker
weighting) are not handled: fan-beam FBP expects a full rotation.

Parallel-beam FBP back-projects with the projector's own exact transpose (the cached sparse
matrix or the numba kernels, see :meth:`.ParallelBeamRadon.fbp`), as ASTRA's CPU FBP does
with its projector; :func:`backproject_parallel` is the pixel-driven back-projection (linear
interpolation on the detector at each pixel centre) kept as the reference it is tested
against.  Fan-beam FBP back-projects pixel-driven (:func:`backproject_fan`), because its
``1/U^2`` weight depends on the pixel and the view jointly and is no sinogram weighting of
the transpose.  The angle integral uses midpoint weights of the (possibly uneven) angles.
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = [
    "FILTERS",
    "ramp_filter_response",
    "filter_sinogram",
    "angular_weights",
    "interpolate_detector",
    "backproject_parallel",
    "backproject_fan",
]

FILTERS = ("ramp", "shepp-logan", "cosine", "hann")


def ramp_filter_response(
    n_detectors: int, spacing: float, filter: str = "ramp", dtype=torch.float64, device="cpu"
) -> tuple[torch.Tensor, int]:
    """Frequency response of the (windowed) spatial ramp, zero-padded.

    Returns
    -------
    response : torch.Tensor
        Real ``(P,)`` with ``P`` the padded length (a power of two at least ``2 n``),
        including the ``spacing`` factor of the discrete convolution, units 1/length.
    P : int
    """
    if filter not in FILTERS:
        raise ValueError(f"filter: expected one of {FILTERS}, got {filter!r}")
    resp, p = _response64(int(n_detectors), float(spacing), filter)
    return resp.to(device=device, dtype=dtype), p


@functools.lru_cache(maxsize=32)
def _response64(n_detectors: int, spacing: float, filter: str) -> tuple[torch.Tensor, int]:
    """float64 CPU response, cached per detector length, spacing and window."""
    p = 1 << max(6, math.ceil(math.log2(2 * n_detectors)))
    n = torch.fft.fftfreq(p, 1.0 / p, dtype=torch.float64).round().to(torch.int64)
    h = torch.zeros(p, dtype=torch.float64)
    h[n == 0] = 1.0 / (4.0 * spacing**2)
    odd = (n % 2) != 0
    h[odd] = -1.0 / (math.pi * n[odd].to(torch.float64) * spacing) ** 2
    resp = torch.fft.fft(h).real * spacing
    nu = torch.fft.fftfreq(p, dtype=torch.float64)
    if filter == "shepp-logan":
        resp = resp * torch.sinc(nu)
    elif filter == "cosine":
        resp = resp * torch.cos(math.pi * nu)
    elif filter == "hann":
        resp = resp * torch.cos(math.pi * nu) ** 2
    return resp, p


def filter_sinogram(sino: torch.Tensor, spacing: float, filter: str = "ramp") -> torch.Tensor:
    """Convolve each projection (last axis) with the windowed ramp; units (sino)/length.

    Parameters
    ----------
    sino : torch.Tensor
        Real ``(..., n_detectors)``.
    spacing : float
        Detector spacing (length).
    filter : str
        One of :data:`FILTERS`.
    """
    d = sino.shape[-1]
    resp, p = ramp_filter_response(d, spacing, filter, sino.dtype, sino.device)
    spec = torch.fft.rfft(sino, n=p, dim=-1) * resp[: p // 2 + 1]
    return torch.fft.irfft(spec, n=p, dim=-1)[..., :d]


def angular_weights(angles: torch.Tensor, period: float) -> torch.Tensor:
    """Midpoint-rule weights ``w_a`` (radians) so that ``sum_a w_a g(a)`` approximates an
    integral over one ``period`` of the angle.

    Angles are reduced modulo ``period`` and sorted; each gets half the distance to its two
    neighbours.  A wrap-around gap much larger than the typical spacing (limited-angle scans)
    is replaced by the median spacing so that the end views are not over-weighted.
    """
    a = torch.remainder(angles.to(torch.float64), period)
    order = torch.argsort(a)
    s = a[order]
    n = s.numel()
    if n == 1:
        return torch.full((1,), period, dtype=torch.float64)
    gaps = torch.diff(s, append=s[:1] + period)
    med = torch.median(gaps[:-1]) if n > 2 else gaps[0]
    if gaps[-1] > 1.5 * med:
        gaps[-1] = med
    w_sorted = 0.5 * (gaps + torch.roll(gaps, 1))
    w = torch.empty_like(w_sorted)
    w[order] = w_sorted
    return w


def interpolate_detector(q: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``q`` (B, A, D) at fractional cell indices ``index`` (A, P).

    Row ``a`` of ``index`` samples row ``a`` of ``q``.  Values outside ``[0, D-1]`` fall off
    linearly to zero over one cell (zero padding).  Returns (B, A, P).
    """
    b, a, d = q.shape
    gx = index * (2.0 / max(d - 1, 1)) - 1.0 if d > 1 else index * 2.0
    rows = torch.arange(a, device=q.device, dtype=index.dtype)
    gy = (rows * (2.0 / max(a - 1, 1)) - 1.0)[:, None].expand_as(gx)
    grid = torch.stack([gx, gy], dim=-1).to(q.dtype)[None].expand(b, -1, -1, -1)
    out = torch.nn.functional.grid_sample(
        q[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return out[:, 0]


def _pixels(image_size: int, pixel_size: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    c = (torch.arange(image_size, device=device, dtype=dtype) - (image_size - 1) / 2) * pixel_size
    X = c[None, :].expand(image_size, image_size).reshape(-1)
    Y = (-c)[:, None].expand(image_size, image_size).reshape(-1)
    return X, Y


def backproject_parallel(
    q: torch.Tensor,
    angles: torch.Tensor,
    weights: torch.Tensor,
    image_size: int,
    pixel_size: float,
    detector_spacing: float,
    center: float | None = None,
    chunk: int = 30,
) -> torch.Tensor:
    """Pixel-driven back-projection ``sum_a w_a q_a(x . e_a)``.

    Parameters
    ----------
    q : torch.Tensor
        ``(B, 1, A, D)`` filtered sinogram.
    angles, weights : torch.Tensor
        ``(A,)`` radians and integration weights.
    center : float, optional
        Detector cell index of the rotation axis; default ``(D - 1) / 2``.

    Returns
    -------
    torch.Tensor
        ``(B, 1, N, N)``.
    """
    b, _, n_a, d = q.shape
    dev, dt = q.device, q.dtype
    X, Y = _pixels(image_size, pixel_size, dev, dt)
    ang = angles.to(device=dev, dtype=dt)
    wts = weights.to(device=dev, dtype=dt)
    c0 = (d - 1) / 2 if center is None else float(center)
    out = torch.zeros(b, image_size * image_size, device=dev, dtype=dt)
    for s in range(0, n_a, chunk):
        th = ang[s : s + chunk, None]
        u = X[None] * torch.cos(th) + Y[None] * torch.sin(th)
        idx = u / detector_spacing + c0
        vals = interpolate_detector(q[:, 0, s : s + chunk], idx)
        out = out + (vals * wts[None, s : s + chunk, None]).sum(1)
    return out.reshape(b, 1, image_size, image_size)


def backproject_fan(
    q: torch.Tensor,
    angles: torch.Tensor,
    weights: torch.Tensor,
    image_size: int,
    pixel_size: float,
    virtual_spacing: float,
    source_origin: float,
    chunk: int = 30,
) -> torch.Tensor:
    """Weighted fan-beam back-projection ``sum_a w_a q_a(s(x)) / U^2`` (flat virtual detector).

    ``q`` is ``(B, 1, A, D)`` on the virtual detector through the rotation axis with cell
    spacing ``virtual_spacing``; ``s(x) = R_so (x . e_a) / (R_so + x . d_a)`` and
    ``U = (R_so + x . d_a) / R_so``.
    """
    b, _, n_a, d = q.shape
    dev, dt = q.device, q.dtype
    X, Y = _pixels(image_size, pixel_size, dev, dt)
    ang = angles.to(device=dev, dtype=dt)
    wts = weights.to(device=dev, dtype=dt)
    out = torch.zeros(b, image_size * image_size, device=dev, dtype=dt)
    for s in range(0, n_a, chunk):
        th = ang[s : s + chunk, None]
        c, sn = torch.cos(th), torch.sin(th)
        along = -X[None] * sn + Y[None] * c  # x . d
        across = X[None] * c + Y[None] * sn  # x . e_u
        depth = source_origin + along
        s_virt = source_origin * across / depth
        idx = s_virt / virtual_spacing + (d - 1) / 2
        vals = interpolate_detector(q[:, 0, s : s + chunk], idx)
        inv_u2 = (source_origin / depth) ** 2
        out = out + (vals * inv_u2[None] * wts[None, s : s + chunk, None]).sum(1)
    return out.reshape(b, 1, image_size, image_size)
