"""The exact output distribution of the discretised backward chain for a Gaussian prior.

For a Gaussian prior ``N(m, C)`` with the exact denoiser, the backward chain that the SMC
samplers move particles with (:func:`diffinv.solvers.kernels.reverse_kernel`, started at
``N(0, sigma_max^2 I)``) is linear-Gaussian, so the distribution of its output — the
*model's* prior — is Gaussian and computable in closed form, per eigen-coordinate of ``C``:

``z' = b z + sqrt(v) xi`` with ``b = a + (1 - a) lam / (lam + s^2)``, ``a = s'^2 / s^2``.

The SMC target is this model prior times the exact likelihood; it tends to the exact posterior
as the number of steps grows (with ``kernel='ddpm'`` the kernel omits ``Var(x0 | x_t)``: a
variance deficit of order 1/steps; ``'midpoint'`` nearly cancels it; ``'tweedie'``
(:mod:`diffinv.solvers.smc.tweedie_kernel`) is the exact transition, so the only gap left is the
start ``N(0, sigma_max^2 I)`` in place of ``N(m, C + sigma_max^2 I)``).
"""

from __future__ import annotations

import torch

from ..priors.gaussian import GaussianPrior
from ..solvers.kernels import reverse_kernel

__all__ = ["model_prior"]


def model_prior(
    prior: GaussianPrior, sigmas: torch.Tensor, kernel: str = "midpoint"
) -> GaussianPrior:
    """The Gaussian distribution of the backward chain's output for ``prior``.

    Parameters
    ----------
    prior : GaussianPrior
        The prior whose exact denoiser drives the chain.
    sigmas : torch.Tensor
        Decreasing noise levels ending in 0 (a :mod:`~diffinv.schedules` schedule);
        the chain starts at ``N(0, sigmas[0]^2 I)``.
    kernel : str
        Variance rule of :func:`diffinv.solvers.kernels.reverse_kernel`, or ``"tweedie"``.

    Returns
    -------
    GaussianPrior
        The chain's output distribution (float64), same event shape as ``prior``.
    """
    lam, u, m = prior.eigvals, prior.eigvecs, prior.mean
    var = torch.full_like(lam, float(sigmas[0]) ** 2)
    gain = torch.ones_like(lam)
    for i in range(len(sigmas) - 1):
        s, sn = float(sigmas[i]), float(sigmas[i + 1])
        shrink = lam / (lam + s * s)
        if sn == 0.0:
            b, v = shrink, 0.0
        else:
            a = sn * sn / (s * s)
            b = a + (1 - a) * shrink
            if kernel == "tweedie":  # adds (1 - a)^2 Var(x0 | x_s) = (1 - a)^2 s^2 shrink
                v = sn * sn * (1 - a) + (1 - a) ** 2 * s * s * shrink
            else:
                v = reverse_kernel(torch.zeros(1), torch.zeros(1), s, sn, kernel)[1]
        var = b * b * var + v
        gain = b * gain
    mean = m + u @ (gain * (u.T @ (-m)))
    cov = (u * var) @ u.T
    return GaussianPrior(mean.reshape(prior.event_shape), 0.5 * (cov + cov.T))
