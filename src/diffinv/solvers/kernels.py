"""Reverse-diffusion kernels shared by several samplers (VE / EDM convention).

* :func:`ancestral_step` samples one ancestral step (DPS, PiGDM).
* :func:`reverse_kernel` gives the mean and variance of the Gaussian backward kernel given a
  denoised estimate (SMC proposals, TDS, the chain references in :mod:`diffinv.testing`).
* :func:`ode_x0` integrates the probability-flow ODE to ``sigma = 0`` (DAPS).
"""

from __future__ import annotations

import math

import torch

__all__ = ["KERNELS", "ancestral_step", "ode_x0", "reverse_kernel"]

ODE_RHO = 7.0

def ancestral_step(
    x: torch.Tensor,
    x0: torch.Tensor,
    sigma: float,
    sigma_next: float,
    eta: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One ancestral step of the VE reverse SDE from ``sigma`` to ``sigma_next``.

    Splits ``sigma_next`` into a deterministic part ``sigma_down`` and fresh noise
    ``sigma_up`` (Karras et al. 2022 / k-diffusion ``sample_euler_ancestral``): with
    ``eta = 1`` the step samples exactly ``p(x_next | x, x0)`` of the Gaussian reverse
    kernel when ``x0`` is exact.
    """
    if sigma_next == 0.0:
        return x0.clone()
    up = eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2, 0.0))
    up = min(up, sigma_next)
    down = math.sqrt(sigma_next**2 - up**2)
    d = (x - x0) / sigma
    out = x + d * (down - sigma)
    if up > 0:
        out = out + up * torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return out


def ode_x0(prior, x: torch.Tensor, sigma: float, ode_steps: int) -> torch.Tensor:
    """Estimate ``x0`` from ``x`` at noise ``sigma`` by Euler steps of the probability-flow ODE.

    The inner schedule is ``sigma (1 - k / K)^7`` for ``k = 0..K`` (the EDM spacing, dense near
    0); the last step jumps to ``sigma = 0`` with the denoiser.  Costs ``ode_steps`` denoiser
    calls.  Runs without gradients.
    """
    n = x.shape[0]
    with torch.no_grad():
        for k in range(ode_steps):
            s = sigma * (1.0 - k / ode_steps) ** ODE_RHO
            d = prior(x, torch.full((n,), s, dtype=x.dtype, device=x.device))
            if k == ode_steps - 1:
                return d
            s_next = sigma * (1.0 - (k + 1) / ode_steps) ** ODE_RHO
            x = x + (s_next - s) * (x - d) / s
    return x  # pragma: no cover - ode_steps >= 1


KERNELS = ("midpoint", "ddpm")


def reverse_kernel(
    x: torch.Tensor, x0: torch.Tensor, sigma: float, sigma_next: float, kernel: str = "ddpm"
) -> tuple[torch.Tensor, float]:
    r"""Mean and variance of the Gaussian VE backward kernel given a denoised estimate.

    For ``x_s = x_0 + s eps`` the exact kernel given ``x_0`` is

    .. math:: \mu = x_0 + \frac{s'^2}{s^2}(x_s - x_0),\qquad
              v_{ddpm} = \frac{s'^2 (s^2 - s'^2)}{s^2}

    (``kernel="ddpm"``; :func:`ancestral_step` with ``eta = 1``).  With
    ``x_0`` replaced by the posterior mean ``D(x_s)`` this omits the spread
    ``(1 - s'^2/s^2)^2 Var(x_0 | x_s)`` and the chain's output is too narrow (for a Gaussian
    prior about 11% variance deficit at 100 Karras steps); the Euler-Maruyama variance
    ``v_em = s^2 - s'^2`` (which takes ``Var(x_0 | x_s) = s^2``) errs by about as much the
    other way.  ``kernel="midpoint"`` uses their average

    .. math:: v_{mid} = \tfrac12 (v_{ddpm} + v_{em}) = \frac{s^4 - s'^4}{2 s^2},

    whose output variance for Gaussian priors is within 0.3% of the truth at 100 Karras steps
    for prior variances from 1e-2 to 1e2 (see :mod:`diffinv.testing.chain_reference`).  Both kernels
    have the same mean.  ``sigma_next = 0`` gives ``(x0, 0)``.

    Returns
    -------
    mean : torch.Tensor
        Same shape as ``x``.
    var : float
        Isotropic variance.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {list(KERNELS)}, got {kernel!r}")
    if sigma_next == 0.0:
        return x0, 0.0
    a = sigma_next**2 / sigma**2
    var = sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2
    if kernel == "midpoint":
        var = 0.5 * (sigma**4 - sigma_next**4) / sigma**2
    return x0 + a * (x - x0), var
