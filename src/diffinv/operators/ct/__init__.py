"""X-ray CT forward models: parallel- and fan-beam ray transforms, FBP, transmission noise.

* :class:`ParallelBeamRadon`, :class:`FanBeamRadon` (flat or curved detector): Joseph's
  projector with an exact transpose (numba on CPU, torch sparse CSR on any device), line
  integrals in physical units, ``op.fbp(y, filter=...)``.
* :class:`TransmissionPoisson`: photon counts ``Poisson(I0 exp(-A x) + dark)``;
  :func:`gaussian_log_data`: the Gaussian approximation on log data.

Conventions (image grid, angles, detector axis, units) are in :mod:`.geometry`.
"""

from .fan_beam import FanBeamRadon
from .fbp import FILTERS
from .noise import TransmissionPoisson, counts_to_line_integrals, gaussian_log_data
from .parallel_beam import ParallelBeamRadon
from .projector import RayTransform

__all__ = [
    "FILTERS",
    "FanBeamRadon",
    "ParallelBeamRadon",
    "RayTransform",
    "TransmissionPoisson",
    "counts_to_line_integrals",
    "gaussian_log_data",
]
