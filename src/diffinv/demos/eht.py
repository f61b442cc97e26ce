"""Event Horizon Telescope demos: a simulated crescent (``eht-crescent``) and real M87.

``eht-crescent``: a 42-microarcsecond crescent (0.6 Jy, bright in the south) observed by
the EHT 2017 array toward M87 on 2017 April 5 (Earth-rotation synthesis, thermal noise from
the station SEFDs).  By default (``data="vis"``) the data are calibrated complex
visibilities: with the Gaussian prior a linear-Gaussian problem whose exact posterior
``demo.prior.posterior(demo.problem)`` is the reference for samplers.  ``data="closures"``
adds random station gains and keeps only closure phases, log closure amplitudes and a
total-flux constraint (gain-free, as the EHT images).

Solver note: with thermal sigmas of a few mJy these likelihoods are very informative and
stiff; DPS needs tiny steps on them (the defaults below are stable but far from chi^2 ~ 1)
and samplers with exact or annealed data steps are the better choice.

``eht-m87``: real EHT M87 data: every UVFITS file under ``$DIFFINV_SHARED_DATA/eht2017_m87``
(or the file(s) given as ``path``), scan-averaged, closure phases and log closure amplitudes
per file plus total flux, 5 % systematic noise added to the visibility sigmas; labels
(source, date, band) are read from the files.  Default prior: the shipped learned
``blackhole`` prior (with the analytic Gaussian prior below the posterior mean fits the
closure phases at reduced chi^2 ~75 and shows no ring).

The prior is swappable: any denoiser ``D(x, sigma)`` on ``(batch, 1, N, N)`` images in Jy
per pixel, or a shipped prior's name or checkpoint path (``prior="blackhole"``, checked for
channels, size limits and units).  ``eht-crescent`` defaults to the analytic
:class:`~diffinv.priors.GaussianPrior` of :func:`blackhole_gaussian_prior` (mean a round
Gaussian of 0.6 Jy, FWHM 50 uas; squared-exponential covariance with a 10 uas correlation
length) on purpose: with visibilities the problem is then linear-Gaussian and its exact
posterior is the reference that checks the samplers (``metadata["exact_posterior"]``, the
exactness tests and benchmarks).  The learned ``blackhole`` prior is one ``--prior
blackhole`` away, and is the default of the real-data ``eht-m87``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..datasets.blackhole import crescent_image, random_blackhole_images
from ..operators import GaussianNoise, InverseProblem
from ..operators.interferometry import (
    Array,
    Observation,
    Visibilities,
    add_thermal_noise,
    apply_station_gains,
    data_product_problem,
    random_station_gains,
)
from ..operators.interferometry.rml import gaussian_image
from ..priors import GaussianPrior
from .prior_choice import prior_for_problem
from .registry import Demo, register_demo

M87_RA_DEG, M87_DEC_DEG = 187.7059307575226, 12.39112323919932
M87_FLUX_JY = 0.6  # compact flux density of M87 at 230 GHz (Paper IV: 0.5-0.6 Jy)
M87_SYSTEMATIC = 0.05  # fractional systematic noise (Paper IV surveys 0-5 %)
#: DAPS with Metropolis-adjusted HMC data steps; 20 HMC moves per level bring the posterior
#: mean's closure chi^2 to ~1.2-1.3 on the four 2017 files (benchmarks/README.md)
M87_SOLVER_DEFAULTS = {
    "solver": "daps",
    "steps": 50,
    "options": {"ode_steps": 1, "data_step": "hmc", "langevin_steps": 20, "lipschitz": 1e10},
}
_DATA_WORDS = {
    "closures": "closure phases and log closure amplitudes",
    "vis": "complex visibilities",
}


def blackhole_gaussian_prior(
    image_size: int,
    fov_uas: float,
    total_flux: float = 0.6,
    fwhm_uas: float = 50.0,
    correlation_uas: float = 10.0,
    relative_std: float = 0.5,
) -> GaussianPrior:
    """Analytic Gaussian prior on ``(1, N, N)`` images in Jy per pixel.

    Mean: a round Gaussian of ``total_flux`` Jy and FWHM ``fwhm_uas``.  Covariance:
    ``s_p s_q exp(-|p - q|^2 / (2 c^2))`` with ``c = correlation_uas`` and pixel standard
    deviation ``s_p = relative_std * max(mean)`` (plus a 1e-6 relative nugget).
    """
    mean = gaussian_image(image_size, fov_uas, fwhm_uas, total_flux)[0]
    d = fov_uas / image_size
    ii, jj = torch.meshgrid(torch.arange(image_size), torch.arange(image_size), indexing="ij")
    pts = torch.stack([ii.reshape(-1), jj.reshape(-1)], 1).to(torch.float64) * d
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    s = relative_std * float(mean.max())
    cov = s**2 * (torch.exp(-d2 / (2 * correlation_uas**2)) + 1e-6 * torch.eye(len(pts)))
    # start samplers at a noise level ~10x the prior's largest standard deviation
    sigma_max = 10.0 * float(torch.linalg.eigvalsh(cov).max().sqrt())
    return GaussianPrior(mean, cov.to(torch.float64), sigma_max=sigma_max)


def _metadata(obs: Observation, image_size: int, fov_uas: float) -> dict:
    return {
        "units": "Jy/pixel",
        "physical_range": (0.0, float("inf")),  # flux density is non-negative
        "fov_uas": fov_uas,
        "pixel_size_uas": fov_uas / image_size,
        "ra_deg": obs.ra_deg,
        "dec_deg": obs.dec_deg,
        "frequency_hz": obs.frequency_hz,
        "mjd": obs.mjd,
        "source": obs.source or "M87",
        "orientation": "row 0 north, column 0 east",
    }


CLOSURE_DEFAULTS = {
    "solver": "daps",
    "steps": 50,
    "options": {"ode_steps": 1, "data_step": "hmc", "langevin_steps": 5, "lipschitz": 1e10},
}


def _crescent_defaults(data: str) -> dict:
    """Solver defaults for ``eht-crescent`` (see benchmarks/demos.py).

    ``vis``: DAPS with exact conjugate-gradient data steps and Tweedie x0 estimates.  The
    data step's normal equations are badly conditioned at the start of the schedule (thermal
    sigmas of 0.5-13 mJy against a prior std of ~5 mJy/pixel), so CG never reaches the
    float32 tolerance and runs to ``cg_max_iter`` at every level (200 by default: ~0.4 s per
    level for 8 chains, and ``ode_steps=5`` multiplies the denoiser calls); 30 iterations
    give the same posterior to within the Monte Carlo error.
    ``closures``: nonlinear and stiff (the likelihood's curvature at the truth is ~1e10,
    dominated by the total-flux term); DAPS with Metropolis-adjusted HMC data steps sized for
    curvature 1e10.  Measured figures: ``benchmarks/README.md``, "Built-in problems".
    """
    if data == "vis":
        return {"solver": "daps", "steps": 200, "options": {"ode_steps": 1, "cg_max_iter": 30}}
    return CLOSURE_DEFAULTS


def _named_prior(spec: str, problem: str, image_size: int):
    """A shipped prior's name or a checkpoint path, checked against the problem's images."""
    return prior_for_problem(spec, problem, (1, image_size, image_size), ("Jy",),
                             "flux density in Jy per pixel")


@register_demo("eht-crescent")
def build_crescent(
    seed: int = 0,
    image_size: int = 32,
    fov_uas: float = 160.0,
    data: str = "vis",
    prior=None,
    truth: str = "crescent",
) -> Demo:
    """Simulated EHT 2017 observation of a crescent; see the module notes.

    ``truth``: ``"crescent"`` (the fixed 42 uas crescent; ``seed`` fixes the noise and gains)
    or ``"random"`` (a draw of :func:`~diffinv.datasets.blackhole.random_blackhole_images`,
    the family the shipped ``blackhole`` prior was trained on, with generator seed ``seed``:
    a held-out source for calibration studies).  ``prior``: a denoiser, ``None`` /
    ``"gaussian"`` (:func:`blackhole_gaussian_prior`), ``"learned"`` (the shipped
    ``blackhole`` prior; 32 pixels over 160 uas), or another shipped prior's name or a
    checkpoint path (checked for channels, size limits and units).
    """
    if data not in ("closures", "vis"):
        raise ValueError(f"data: expected 'closures' or 'vis', got {data!r}")
    if truth not in ("crescent", "random"):
        raise ValueError(f"truth: expected 'crescent' or 'random', got {truth!r}")
    analytic = prior is None or prior == "gaussian"
    prior = _crescent_prior(prior, image_size, fov_uas)
    g = torch.Generator().manual_seed(seed)
    obs = Observation.simulate(
        Array.eht2017(),
        M87_RA_DEG,
        M87_DEC_DEG,
        "2017-04-05",
        integration_s=60.0,
        scan_interval_s=900.0,
        source="crescent",
    )
    if truth == "random":
        source = random_blackhole_images(1, image_size, fov_uas,
                                         generator=torch.Generator().manual_seed(seed),
                                         dtype=torch.float64)
        described = "a random black-hole image (held-out draw of the blackhole family)"
    else:
        source = crescent_image(image_size, fov_uas, 42.0, 10.0, 0.5, 180.0, dtype=torch.float64)
        described = "a 42 uas crescent"
    vis = Visibilities(obs, image_size, fov_uas)(source)
    if data == "closures":
        vis = apply_station_gains(obs, vis, random_station_gains(obs, 0.1, 180.0, generator=g))
    observed = obs.with_data(add_thermal_noise(obs, vis, g))
    if data == "closures":
        problem = data_product_problem(
            observed,
            image_size,
            fov_uas,
            {"cphase": 1.0, "logcamp": 1.0, "flux": 1.0},
            total_flux=0.6,
        )
    else:
        op = Visibilities(observed, image_size, fov_uas)
        problem = InverseProblem(
            op, GaussianNoise(observed.sigma.float()), observed.vis[None].to(torch.complex64)
        )
    if isinstance(prior, str):
        prior = _named_prior(prior, "eht-crescent", image_size)
    return Demo(
        problem=problem,
        prior=prior,
        x_true=source.float(),
        description=(
            f"{image_size}x{image_size} image (Jy/pixel, {fov_uas:g} uas field) of "
            f"{described} from simulated EHT 2017 {_DATA_WORDS[data]}"
        ),
        solver_defaults=_crescent_defaults(data),
        to_image=lambda x: x[:, 0],
        metadata=_metadata(observed, image_size, fov_uas)
        | {"data": data, "truth": truth, "exact_posterior": data == "vis" and analytic},
    )


def _crescent_prior(prior, image_size: int, fov_uas: float):
    """Resolve the ``prior`` argument of ``eht-crescent`` (see :func:`build_crescent`)."""
    if callable(prior):
        return prior
    if prior is None or prior == "gaussian":
        return blackhole_gaussian_prior(image_size, fov_uas)
    if prior != "learned":  # a shipped prior's name or a checkpoint path
        return _named_prior(prior, "eht-crescent", image_size)
    from ..priors import load

    learned = load("blackhole")
    if tuple(learned.image_shape) != (1, image_size, image_size) or float(fov_uas) != 160.0:
        raise ValueError(f"image_size, fov_uas: the shipped blackhole prior is "
                         f"{tuple(learned.image_shape)} over 160 uas, got {image_size} pixels "
                         f"over {fov_uas:g} uas")
    return learned


@register_demo("eht-m87")
def build_m87(
    seed: int = 0,
    image_size: int = 32,
    fov_uas: float = 160.0,
    path: str | list[str] | None = None,
    prior=None,
    systematic: float = M87_SYSTEMATIC,
) -> Demo:
    """Real EHT M87 data (closures + flux, every file combined); needs the data files."""
    if path is None:
        root = os.environ.get("DIFFINV_SHARED_DATA")
        if not root:
            raise FileNotFoundError(
                "path: give the M87 UVFITS file(s) or set DIFFINV_SHARED_DATA to the folder "
                "holding eht2017_m87/"
            )
        paths = sorted((Path(root) / "eht2017_m87").glob("*.uvfits"))
        if not paths:
            raise FileNotFoundError(f"path: no .uvfits files in {Path(root) / 'eht2017_m87'}")
    else:
        paths = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(p) for p in path]
    from ..data_problems.eht import EHTSettings, load_eht  # the reader of reconstruct --data

    if isinstance(prior, str):
        prior = _named_prior(prior, "eht-m87", image_size)

    demo = load_eht(paths, prior=prior,
                    settings=EHTSettings(image_size=image_size, fov_uas=fov_uas,
                                         systematic=systematic))
    demo.metadata.update({"data": "closures", "seed": seed, "systematic": systematic})
    return demo
