"""X-ray CT forward models: parallel- and fan-beam ray transforms, FBP, transmission noise.

Conventions (image grid, angles, detector axis, units) are in :mod:`.geometry`.
"""

from .fan_beam import FanBeamRadon
from .fbp import FILTERS
from .parallel_beam import ParallelBeamRadon
from .projector import RayTransform

__all__ = ["FILTERS", "FanBeamRadon", "ParallelBeamRadon", "RayTransform"]
