"""Exact references for the SMC tests: the discretised model's prior and posterior.

For a Gaussian prior ``N(m, C)`` with the exact denoiser, the backward chain that the SMC
samplers move particles with (:func:`diffinv.solvers.particles.reverse_kernel`, started at
``N(0, sigma_max^2 I)``) is linear-Gaussian, so the distribution of its output — the
*model's* prior — is Gaussian and computable in closed form, per eigen-coordinate of ``C``:

``z' = b z + sqrt(v) xi`` with ``b = a + (1 - a) lam / (lam + s^2)``, ``a = s'^2 / s^2``.

The SMC target is this model prior times the exact likelihood; it tends to the exact posterior
as the number of steps grows (the kernel omits ``Var(x0 | x_t)``, a variance deficit of
order 1/steps).
"""

from __future__ import annotations

import torch

from diffinv.priors import GaussianPrior


def model_prior(prior: GaussianPrior, sigmas: torch.Tensor) -> GaussianPrior:
    """The Gaussian distribution of the backward chain's output for ``prior``."""
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
            b, v = a + (1 - a) * shrink, sn * sn * (s * s - sn * sn) / (s * s)
        var = b * b * var + v
        gain = b * gain
    mean = m + u @ (gain * (u.T @ (-m)))
    cov = (u * var) @ u.T
    return GaussianPrior(mean.reshape(prior.event_shape), 0.5 * (cov + cov.T))
