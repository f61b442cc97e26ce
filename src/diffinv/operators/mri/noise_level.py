r"""Thermal noise level of multi-coil Cartesian k-space, estimated from the data alone.

Both estimators take the median absolute value of real and imaginary parts over samples
that should hold noise only: ``sigma = 1.4826 * median(|Re|, |Im|)`` (the MAD of zero-mean
Gaussian noise, per real part).  Signal in those samples biases them *upwards*, so
:func:`kspace_noise_sigma` takes the smaller of the two that apply.

* :func:`readout_background_sigma` (hybrid space): a Cartesian line is sampled fully along
  the readout, so the 1-D inverse DFT along the readout of every acquired line gives

  .. math:: \tilde y_c(x, k_y) = \sum_y s_c(x, y)\, m(x, y)\, e^{-2\pi i k_y y / N_y} + n

  which is pure noise at every readout position ``x`` where the object ``m`` is absent for
  all ``y`` -- the air either side of the head, or the readout oversampling margin of real
  scans (the DFT is unitary, so the noise keeps its sigma).  The positions with the least
  energy (summed over lines and coils), at the noise floor, are used.
* :func:`outer_kspace_sigma`: acquired samples beyond 80 % of the largest k-space radius; an
  upper bound for objects with sharp edges, whose spectra reach the corners.

A separate noise scan (no RF excitation) is better still: see
:func:`~diffinv.operators.mri.coils.noise_covariance`.
"""

from __future__ import annotations

import torch

__all__ = ["outer_kspace_sigma", "readout_background_sigma", "kspace_noise_sigma",
           "readout_axis"]

_MAD = 1.4826


def _mad_sigma(values: torch.Tensor) -> float:
    vals = torch.view_as_real(values.to(torch.complex128)).abs().reshape(-1)
    return float(_MAD * vals.median())


def outer_kspace_sigma(kspace: torch.Tensor, mask: torch.Tensor, radius: float = 0.8) -> float:
    """Noise sigma per real part from acquired samples beyond ``radius`` of the largest radius.

    Parameters
    ----------
    kspace : torch.Tensor
        ``(C, H, W)`` complex, centred k-space (zeros where not acquired).
    mask : torch.Tensor
        ``(H, W)`` bool, acquired samples.
    radius : float
        Fraction of the largest acquired radius beyond which samples are used.
    """
    h, w = mask.shape
    ky = (torch.arange(h) - h // 2).to(torch.float64) / (h / 2)
    kx = (torch.arange(w) - w // 2).to(torch.float64) / (w / 2)
    r = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    outer = mask & (r >= radius * float(r[mask].max()))
    if int(outer.sum()) * kspace.shape[0] < 16:
        raise ValueError("kspace: too few acquired samples in the outer k-space to estimate noise")
    return _mad_sigma(kspace[:, outer])


def readout_axis(mask: torch.Tensor) -> int | None:
    """The fully sampled readout axis of a Cartesian line mask (0 or 1), or ``None``.

    A line mask is constant along its readout: every acquired line is complete.  A fully
    sampled mask reports axis 1 (either would do); a 2-D (Poisson-disc) mask ``None``.
    """
    mask = mask.bool()
    if bool((mask == mask[:, :1]).all()):  # rows all-or-nothing: readout along axis 1
        return 1
    if bool((mask == mask[:1, :]).all()):
        return 0
    return None


def readout_background_sigma(kspace: torch.Tensor, mask: torch.Tensor) -> float:
    """Noise sigma per real part from the object-free readout positions in hybrid space.

    Parameters
    ----------
    kspace : torch.Tensor
        ``(C, H, W)`` complex, centred k-space (zeros where not acquired).
    mask : torch.Tensor
        ``(H, W)`` bool Cartesian line mask (see :func:`readout_axis`).

    Raises
    ------
    ValueError
        When ``mask`` is not a Cartesian line mask.
    """
    axis = readout_axis(mask)
    if axis is None:
        raise ValueError("mask: not a Cartesian line mask (no fully sampled readout axis)")
    k = kspace if axis == 1 else kspace.transpose(1, 2)
    m = mask if axis == 1 else mask.T
    lines = k[:, m[:, 0]]  # (C, lines, readout)
    # centred unitary 1-D inverse DFT along the readout
    hybrid = torch.fft.fftshift(
        torch.fft.ifft(torch.fft.ifftshift(lines, dim=-1), dim=-1, norm="ortho"), dim=-1
    )
    energy = hybrid.abs().pow(2).sum(dim=(0, 1))
    order = torch.argsort(energy)
    # noise-only positions share one energy level up to chi-square scatter with
    # 2 * lines * coils degrees of freedom; keep those within 4 standard deviations of the
    # quietest position (so that little signal enters), at least 2
    dof = 2 * lines.shape[0] * lines.shape[1]
    level = float(energy[order[0]]) * (1.0 + 4.0 * (2.0 / dof) ** 0.5)
    count = max(2, int((energy <= level).sum()))
    return _mad_sigma(hybrid[..., order[:count]])


def kspace_noise_sigma(kspace: torch.Tensor, mask: torch.Tensor) -> tuple[float, str]:
    """The smaller of the estimates that apply, and a sentence naming it.

    Returns
    -------
    sigma : float
        Noise sigma per real part, in the units of ``kspace``.
    method : str
        Which estimator gave it (stored with the result).
    """
    estimates = {}
    try:
        estimates["MAD of the object-free readout positions in hybrid space"] = (
            readout_background_sigma(kspace, mask))
    except ValueError:
        pass
    try:
        estimates["MAD of acquired outer k-space (radius >= 80 %)"] = outer_kspace_sigma(
            kspace, mask)
    except ValueError:
        pass
    if not estimates:
        raise ValueError("kspace: neither a Cartesian readout nor enough outer k-space samples "
                         "to estimate the noise level; give a noise scan")
    method = min(estimates, key=estimates.get)
    return estimates[method], method
