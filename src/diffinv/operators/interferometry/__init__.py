"""Interferometric (VLBI) imaging: arrays, observations, visibilities, closures, UVFITS.

Image convention everywhere: ``(batch, 1, N, N)`` real tensors in Jy per pixel, row 0 at the
north (top), column 0 at the east (left), i.e. the usual sky view with RA increasing to the
left; the field of view ``fov_uas`` is in micro-arcseconds.
"""

from .arrays import Array
from .noise import add_thermal_noise, apply_station_gains, random_station_gains, thermal_sigma
from .observation import Observation

__all__ = [
    "Array",
    "Observation",
    "add_thermal_noise",
    "apply_station_gains",
    "random_station_gains",
    "thermal_sigma",
]
