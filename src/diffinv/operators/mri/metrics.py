"""Image-quality metrics as the fastMRI challenge reports them (Zbontar et al. 2018).

All three compare magnitude images (complex inputs are replaced by their modulus) and use
the data range of the *target*, ``max(target)``, as fastMRI does.  A tensor ``(H, W)`` is one
image; ``(B, ..., H, W)`` is ``B`` volumes whose other leading axes are slices, and a value is
returned per volume (the data range is the volume's maximum, SSIM is the mean over slices).

* NMSE ``||t - e||^2 / ||t||^2``;
* PSNR ``10 log10(max(t)^2 / mean((t - e)^2))`` in dB;
* SSIM (Wang et al. 2004, IEEE TIP 13:600) with a 7x7 uniform window, ``K1 = 0.01``,
  ``K2 = 0.03`` and sample (N - 1) covariances, averaged over the valid (uncropped) windows:
  the settings of ``skimage.metrics.structural_similarity`` that fastMRI calls.
"""

from __future__ import annotations

import torch

__all__ = ["nmse", "psnr", "ssim"]


def _prepare(
    target: torch.Tensor, estimate: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if not isinstance(target, torch.Tensor) or not isinstance(estimate, torch.Tensor):
        raise ValueError("target, estimate: expected torch tensors")
    if target.shape != estimate.shape:
        raise ValueError(
            f"estimate: expected the target's shape {tuple(target.shape)}, "
            f"got {tuple(estimate.shape)}"
        )
    if target.ndim < 2:
        raise ValueError(f"target: expected (..., H, W), got {tuple(target.shape)}")
    t = target.abs() if target.is_complex() else target
    e = estimate.abs() if estimate.is_complex() else estimate
    t = t.to(torch.float64)
    e = e.to(t.device, torch.float64)
    single = t.ndim == 2
    if single:
        t, e = t[None], e[None]
    b, h, w = t.shape[0], t.shape[-2], t.shape[-1]
    return t.reshape(b, -1, h, w), e.reshape(b, -1, h, w), single


def _out(v: torch.Tensor, single: bool) -> torch.Tensor:
    return v[0] if single else v


def nmse(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Normalised mean squared error per volume."""
    t, e, single = _prepare(target, estimate)
    num = ((t - e) ** 2).flatten(1).sum(1)
    den = (t**2).flatten(1).sum(1)
    return _out(num / den, single)


def psnr(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per volume, peak = ``max(target)``."""
    t, e, single = _prepare(target, estimate)
    mse = ((t - e) ** 2).flatten(1).mean(1)
    peak = t.flatten(1).amax(1)
    return _out(10.0 * torch.log10(peak**2 / mse), single)


def ssim(target: torch.Tensor, estimate: torch.Tensor, win_size: int = 7) -> torch.Tensor:
    """Structural similarity per volume (mean over slices), data range ``max(target)``."""
    t, e, single = _prepare(target, estimate)
    if min(t.shape[-2:]) < win_size:
        raise ValueError(f"target: images must be at least {win_size} pixels on each side")
    drange = t.flatten(1).amax(1)[:, None, None, None]
    b, s, h, w = t.shape
    x = t.reshape(b * s, 1, h, w)
    y = e.reshape(b * s, 1, h, w)

    def mean(z: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(z, win_size, stride=1)

    n = win_size * win_size
    cov_norm = n / (n - 1.0)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    dr = drange.repeat_interleave(s, dim=0) if s > 1 else drange.reshape(b, 1, 1, 1)
    dr = dr.reshape(b * s, 1, 1, 1)
    c1 = (0.01 * dr) ** 2
    c2 = (0.03 * dr) ** 2
    smap = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    per_slice = smap.flatten(1).mean(1).reshape(b, s)
    return _out(per_slice.mean(1), single)
