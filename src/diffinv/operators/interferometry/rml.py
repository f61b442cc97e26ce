r"""Closure-only regularised maximum likelihood (RML) imaging: the classical baseline.

Minimises, over positive images ``x = exp(z)`` in Jy per pixel (Chael et al. 2018,
ApJ 857, 23; EHT Collaboration 2019, Paper IV):

.. math::
    J(x) = \sum_d \alpha_d\, \chi^2_d(x)
         + \beta_{mem} \sum_p \frac{x_p}{F} \ln\frac{x_p}{p_p}
         + \beta_{tv} \frac{1}{F} \sum_p \sqrt{(\nabla_e x)_p^2 + (\nabla_n x)_p^2 + \epsilon^2}
         + \beta_{l1} \frac{1}{F} \sum_p |x_p|
         + \beta_{flux} \left(\frac{\sum_p x_p - F}{F}\right)^2

with ``chi^2_d`` the reduced closure-phase and log-closure-amplitude statistics of
:mod:`.closures`, ``p`` a Gaussian prior image of total flux ``F`` (also the initial
image), ``MEM`` the relative entropy to it.  Optimisation with L-BFGS (or Adam) in rounds;
between rounds the image is blurred by a Gaussian (``blur_fwhm_uas``) and used to restart,
the usual way of escaping local minima of closure-only imaging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .closures import (
    ClosurePhases,
    LogClosureAmplitudes,
    closure_phase_chi2,
    log_closure_amplitude_chi2,
)
from .metrics import blur_image
from .observation import Observation

__all__ = ["RMLResult", "gaussian_image", "rml_closure_imaging"]

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass
class RMLResult:
    """Output of :func:`rml_closure_imaging`.

    Attributes
    ----------
    image : torch.Tensor
        ``(1, 1, N, N)`` float64 image, Jy per pixel.
    chi2 : dict
        Final reduced chi^2 per data product.
    history : list of float
        Objective value at the end of each round.
    """

    image: torch.Tensor
    chi2: dict
    history: list = field(default_factory=list)


def gaussian_image(
    image_size: int, fov_uas: float, fwhm_uas: float, total_flux: float, dtype=torch.float64
) -> torch.Tensor:
    """A centred circular Gaussian ``(1, 1, N, N)`` in Jy per pixel summing to ``total_flux``."""
    if not (fwhm_uas > 0 and total_flux > 0):
        raise ValueError("fwhm_uas, total_flux: expected positive numbers")
    d = fov_uas / image_size
    c = ((image_size - 1) / 2.0 - torch.arange(image_size, dtype=torch.float64)) * d
    s = fwhm_uas * _FWHM_TO_SIGMA
    g = torch.exp(-0.5 * (c[:, None] ** 2 + c[None, :] ** 2) / s**2)
    return (g / g.sum() * total_flux).to(dtype)[None, None]


def _tv(x: torch.Tensor, eps: float) -> torch.Tensor:
    de = x[..., :, 1:] - x[..., :, :-1]
    dn = x[..., 1:, :] - x[..., :-1, :]
    return torch.sqrt(de[..., :-1, :] ** 2 + dn[..., :, :-1] ** 2 + eps**2).sum()


def rml_closure_imaging(
    observation: Observation,
    image_size: int = 32,
    fov_uas: float = 160.0,
    total_flux: float = 0.6,
    prior_fwhm_uas: float = 60.0,
    data_weights: dict[str, float] | None = None,
    reg_weights: dict[str, float] | None = None,
    rounds: int = 3,
    iterations: int = 150,
    blur_fwhm_uas: float | None = 15.0,
    optimizer: str = "lbfgs",
    lr: float = 0.05,
) -> RMLResult:
    """Closure-only RML image of an observation.

    Parameters
    ----------
    observation : Observation
        Visibility data; closures are formed per timestamp (scan-average first).
    image_size, fov_uas : int, float
        Image grid: pixels per side and field of view in micro-arcseconds.
    total_flux : float
        Total flux ``F`` in Jy (closures do not constrain it; the ``flux`` term does).
    prior_fwhm_uas : float
        FWHM of the Gaussian prior / initial image, micro-arcseconds.
    data_weights : dict, optional
        ``{"cphase": a, "logcamp": b}``; default ``{"cphase": 1, "logcamp": 1}``.
    reg_weights : dict, optional
        ``{"mem", "tv", "l1", "flux"}`` weights; default
        ``{"mem": 0.1, "tv": 0.05, "l1": 0.0, "flux": 100.0}``.
    rounds, iterations : int
        Restarts (blurring in between) and optimiser iterations per round.
    blur_fwhm_uas : float or None
        Blur applied to the image between rounds (None: no blur).
    optimizer : str
        ``"lbfgs"`` (default) or ``"adam"``.
    lr : float
        Adam learning rate on the log-image (ignored by L-BFGS, which line-searches).

    Returns
    -------
    RMLResult
    """
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer: expected 'lbfgs' or 'adam', got {optimizer!r}")
    if rounds < 1 or iterations < 1:
        raise ValueError("rounds, iterations: expected positive integers")
    dw = {"cphase": 1.0, "logcamp": 1.0}
    dw.update(data_weights or {})
    rw = {"mem": 0.1, "tv": 0.05, "l1": 0.0, "flux": 100.0}
    rw.update(reg_weights or {})
    unknown = (set(dw) - {"cphase", "logcamp"}) | (set(rw) - {"mem", "tv", "l1", "flux"})
    if unknown:
        raise ValueError(f"data_weights, reg_weights: unknown terms {sorted(unknown)}")
    cp = ClosurePhases(observation, image_size, fov_uas)
    lca = LogClosureAmplitudes(observation, image_size, fov_uas)
    prior = gaussian_image(image_size, fov_uas, prior_fwhm_uas, total_flux)
    log_prior = torch.log(prior)
    eps_tv = 1e-6 * total_flux / image_size**2

    def objective(z: torch.Tensor) -> tuple[torch.Tensor, dict]:
        x = torch.exp(z)
        vis = cp.visibilities(x)
        chi = {}
        total = torch.zeros((), dtype=torch.float64)
        if dw["cphase"] and cp.out_shape[0]:
            chi["cphase"] = closure_phase_chi2(cp.from_visibilities(vis)[0], cp.data, cp.sigma)
            total = total + dw["cphase"] * chi["cphase"]
        if dw["logcamp"] and lca.out_shape[0]:
            model = lca.from_visibilities(vis)[0]
            chi["logcamp"] = log_closure_amplitude_chi2(model, lca.data, lca.sigma)
            total = total + dw["logcamp"] * chi["logcamp"]
        if rw["mem"]:
            total = total + rw["mem"] * (x * (z - log_prior)).sum() / total_flux
        if rw["tv"]:
            total = total + rw["tv"] * _tv(x, eps_tv) / total_flux * image_size
        if rw["l1"]:
            total = total + rw["l1"] * x.abs().sum() / total_flux
        if rw["flux"]:
            total = total + rw["flux"] * ((x.sum() - total_flux) / total_flux) ** 2
        return total, chi

    x0 = prior.clone()
    history = []
    for r in range(rounds):
        z = torch.log(torch.clamp(x0, min=1e-12 * total_flux)).clone().requires_grad_(True)
        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS(
                [z],
                max_iter=iterations,
                history_size=20,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-10,
                tolerance_change=1e-12,
            )

            def closure(opt=opt, z=z):
                opt.zero_grad()
                val, _ = objective(z)
                val.backward()
                return val

            opt.step(closure)
        else:
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(iterations):
                opt.zero_grad()
                val, _ = objective(z)
                val.backward()
                opt.step()
        with torch.no_grad():
            val, _ = objective(z)
            history.append(float(val))
            x0 = torch.exp(z).detach()
            if blur_fwhm_uas and r < rounds - 1:
                x0 = blur_image(x0, fov_uas, blur_fwhm_uas)
    with torch.no_grad():
        _, chi = objective(torch.log(torch.clamp(x0, min=1e-30)))
    return RMLResult(image=x0, chi2={k: float(v) for k, v in chi.items()}, history=history)
