"""Interferometric (VLBI) imaging: arrays, observations, visibilities, closures, UVFITS.

Image convention everywhere: ``(batch, 1, N, N)`` real tensors in Jy per pixel, row 0 at the
north (top), column 0 at the east (left), i.e. the usual sky view with RA increasing to the
left; the field of view ``fov_uas`` is in micro-arcseconds.
"""

from .arrays import Array
from .closures import (
    ClosurePhaseNoise,
    ClosurePhases,
    LogClosureAmplitudes,
    closure_phase_chi2,
    log_closure_amplitude_chi2,
)
from .metrics import RingMetrics, blurred_psnr, ring_metrics
from .noise import add_thermal_noise, apply_station_gains, random_station_gains, thermal_sigma
from .observation import Observation
from .products import data_product_problem, product_reduced_chi2
from .rml import rml_closure_imaging
from .visibilities import Visibilities

__all__ = [
    "Array",
    "ClosurePhaseNoise",
    "ClosurePhases",
    "LogClosureAmplitudes",
    "Observation",
    "RingMetrics",
    "Visibilities",
    "add_thermal_noise",
    "apply_station_gains",
    "blurred_psnr",
    "closure_phase_chi2",
    "data_product_problem",
    "log_closure_amplitude_chi2",
    "product_reduced_chi2",
    "random_station_gains",
    "ring_metrics",
    "rml_closure_imaging",
    "thermal_sigma",
]
