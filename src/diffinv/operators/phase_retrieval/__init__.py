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
from .fourier import FourierPhaseRetrieval, OversampledFourier
from .noise import AmplitudeGaussianNoise, PhotonNoise, flux_for_photons
from .ptychography import FarFieldPtychography, PtychographyLinear, disk_probe, raster_positions

__all__ = [
    "AmplitudeGaussianNoise",
    "CodedDiffraction",
    "CodedFourier",
    "FarFieldPtychography",
    "FourierPhaseRetrieval",
    "IntensityOperator",
    "OversampledFourier",
    "PhotonNoise",
    "PtychographyLinear",
    "disk_probe",
    "fft2c",
    "flux_for_photons",
    "ifft2c",
    "random_masks",
    "raster_positions",
]
