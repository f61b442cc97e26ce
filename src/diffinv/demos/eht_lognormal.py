"""Real EHT M87 data with a log-normal Gaussian-process prior, for exact SMC.

The closure-only problem of ``eht-m87`` (closure phases, log closure amplitudes and total
flux of every file, scan-averaged, 5 % systematic noise) written on white noise ``z``: the
image is ``x = exp(mu + R z)`` (:class:`~diffinv.operators.LogNormalField`; positive, with a
squared-exponential correlation of ``log x``), the prior on ``z`` is ``N(0, I)``
(:class:`~diffinv.priors.GaussianPrior`, which has an exact density and exact draws), and the
forward model is the closure model composed with the field.  This is the prior of Bayesian
VLBI imaging with ``resolve`` (Arras et al. 2022); with it ``smc`` ``method="tempered"`` is an
exact sampler (no denoiser, no twisting function), the cross-check of the learned
``blackhole`` prior on the same data (``benchmarks/README.md``, "SMC on the real EHT M87
data").

Not a registered demo (the problem's unknowns are the white noise, not the image): the
posterior's samples are ``z``; :func:`~diffinv.demos.registry.image_space` turns the
posterior into one over images ``(n, 1, N, N)`` in Jy per pixel (means, stds and chi^2 taken
over the images of the samples), ``demo.to_image(z)`` gives the images ``(n, N, N)``,
``demo.problem.operator.inner`` is the field and ``demo.problem.operator.outer`` the closure
model on images.  From the command line: ``diffinv reconstruct --data FILE.uvfits ...
--prior lognormal`` (:func:`lognormal_demo` on the files' problem).
"""

from __future__ import annotations

import torch

from ..operators import InverseProblem
from ..operators.interferometry.rml import gaussian_image
from ..operators.lognormal import LogNormalField
from ..priors import GaussianPrior
from .eht import M87_FLUX_JY, M87_SYSTEMATIC, build_m87
from .registry import Demo, LatentImages

__all__ = ["build_m87_lognormal", "lognormal_demo", "LOGNORMAL_SOLVER_DEFAULTS"]

#: exact tempered SMC with likelihood-informed HMC moves (benchmarks/README.md)
LOGNORMAL_SOLVER_DEFAULTS = {
    "solver": "smc",
    "steps": 10,  # not used by method="tempered" (its levels adapt to the data)
    # the particle count measured on the four M87 files (benchmarks/README.md, "From the
    # command line"); the CLI's general default of 8 leaves too few distinct particles
    "samples": 32,
    "options": {"method": "tempered", "rejuvenation_moves": 5},
}


def build_m87_lognormal(
    path: str | list[str] | None = None,
    image_size: int = 32,
    fov_uas: float = 160.0,
    log_std: float = 1.0,
    correlation_uas: float = 10.0,
    fwhm_uas: float = 50.0,
    total_flux: float = M87_FLUX_JY,
    systematic: float = M87_SYSTEMATIC,
) -> Demo:
    """The M87 closure problem on white noise with a log-normal prior (module docstring).

    Parameters
    ----------
    path : str or list of str, optional
        UVFITS file(s); default every file under ``$DIFFINV_SHARED_DATA/eht2017_m87``.
    image_size, fov_uas : int, float
        Pixels per side and field of view (micro-arcseconds).
    log_std : float
        Standard deviation of the log-brightness per pixel.
    correlation_uas : float
        Correlation length of the log-brightness, micro-arcseconds.
    fwhm_uas, total_flux : float
        Prior mean image: a round Gaussian of this FWHM (micro-arcseconds) and flux (Jy).
    systematic : float
        Fractional systematic noise added to the visibility sigmas.

    Returns
    -------
    Demo
        ``problem`` on ``z`` ``(image_size**2,)``, ``prior`` ``N(0, I)``, ``to_image``,
        ``solver_defaults`` (:data:`LOGNORMAL_SOLVER_DEFAULTS`) and the settings in
        ``metadata``.
    """
    images = build_m87(image_size=image_size, fov_uas=fov_uas, path=path,
                       prior=lambda x, sigma: x, systematic=systematic)
    return lognormal_demo(images, log_std, correlation_uas, fwhm_uas, total_flux)


def lognormal_demo(
    images: Demo,
    log_std: float = 1.0,
    correlation_uas: float = 10.0,
    fwhm_uas: float = 50.0,
    total_flux: float = M87_FLUX_JY,
) -> Demo:
    """An EHT image problem rewritten on white noise with the log-normal prior.

    Parameters
    ----------
    images : Demo
        A problem on ``(1, N, N)`` images in Jy per pixel with ``fov_uas`` in its metadata
        (:func:`~diffinv.demos.eht.build_m87`, or the files of ``diffinv reconstruct --data``);
        its prior is not used.
    log_std, correlation_uas, fwhm_uas, total_flux : float
        As in :func:`build_m87_lognormal`.

    Returns
    -------
    Demo
        ``problem`` on ``z`` ``(N**2,)``, ``prior`` ``N(0, I)``, ``to_image``, ``latent``
        (the field and the image problem, for :func:`~diffinv.demos.registry.image_space`),
        :data:`LOGNORMAL_SOLVER_DEFAULTS` and the settings in ``metadata``.
    """
    shape = tuple(images.problem.image_shape)
    if len(shape) != 3 or shape[0] != 1 or shape[1] != shape[2]:
        raise ValueError(f"images: expected a problem on (1, N, N) images, got {shape}")
    image_size = shape[1]
    fov_uas = float(images.metadata["fov_uas"])
    n = image_size * image_size
    latent_prior = GaussianPrior(torch.zeros(n, dtype=torch.float64),
                                 torch.eye(n, dtype=torch.float64))
    mean = gaussian_image(image_size, fov_uas, fwhm_uas, total_flux)[0]
    field = LogNormalField(mean, log_std, correlation_uas / (fov_uas / image_size))
    problem = InverseProblem(images.problem.operator @ field, images.problem.noise,
                             images.problem.y, image_shape=(n,))
    metadata = dict(images.metadata)
    physical_range = metadata.pop("physical_range", None)  # bounds the image, not z
    metadata.update(prior="lognormal", log_std=float(log_std),
                    correlation_uas=float(correlation_uas), prior_fwhm_uas=float(fwhm_uas),
                    prior_flux_jy=float(total_flux))

    def to_images(z: torch.Tensor) -> torch.Tensor:
        return field(z.reshape(z.shape[0], n).to(torch.float64))

    return Demo(
        problem=problem,
        prior=latent_prior,
        x_true=None,
        description=(f"{images.description} -- log-normal Gaussian-process prior (log-std "
                     f"{log_std:g}, correlation {correlation_uas:g} uas); unknowns: the "
                     "field's white noise"),
        solver_defaults=LOGNORMAL_SOLVER_DEFAULTS,
        to_image=lambda z: to_images(z)[:, 0],
        metadata=metadata,
        latent=LatentImages(to_images, images.problem, physical_range),
    )
