"""Phase retrieval: intensity measurements ``|B x|^2`` of a linear operator ``B``.

Operators (each an :class:`IntensityOperator` with the linear part as ``.linear``):
:class:`FourierPhaseRetrieval` (oversampled far-field CDI), :class:`CodedDiffraction`
(random masks, CDP) and :class:`FarFieldPtychography` (known probe, scan positions).
Noise: :class:`PhotonNoise` (Poisson counts at a flux), :class:`AmplitudeGaussianNoise`.
Classical baselines: :func:`error_reduction`, :func:`hio`, :func:`raar` (Fourier, with a
support), :func:`wirtinger_flow` (coded diffraction), :func:`epie` (ptychography).
Ambiguity-aware metrics: :mod:`.metrics` (:func:`align`, :func:`psnr`, :func:`ssim`,
:func:`nrmse`).
"""

from ._common import IntensityOperator, fft2c, ifft2c
from .coded_diffraction import CodedDiffraction, CodedFourier, random_masks
from .epie import epie
from .error_reduction import error_reduction
from .fourier import FourierPhaseRetrieval, OversampledFourier
from .hio import hio
from .metrics import align, nrmse, psnr, ssim
from .noise import AmplitudeGaussianNoise, PhotonNoise, flux_for_photons
from .projections import PhaseRetrievalResult
from .ptychography import FarFieldPtychography, PtychographyLinear, disk_probe, raster_positions
from .raar import raar
from .wirtinger_flow import spectral_init, wirtinger_flow

__all__ = [
    "AmplitudeGaussianNoise",
    "CodedDiffraction",
    "CodedFourier",
    "FarFieldPtychography",
    "FourierPhaseRetrieval",
    "IntensityOperator",
    "OversampledFourier",
    "PhaseRetrievalResult",
    "PhotonNoise",
    "PtychographyLinear",
    "align",
    "disk_probe",
    "epie",
    "error_reduction",
    "fft2c",
    "flux_for_photons",
    "hio",
    "ifft2c",
    "nrmse",
    "psnr",
    "raar",
    "random_masks",
    "raster_positions",
    "spectral_init",
    "ssim",
    "wirtinger_flow",
]
