"""diffinv: scientific imaging inverse problems with diffusion-model priors.

The three contracts are an :class:`~diffinv.operators.Operator`, a noise model, and a
denoiser prior ``D(x, sigma)``; :func:`sample` runs a registered solver and returns a
:class:`Posterior`.
"""

from .calibration import Calibration, calibrate, load_calibration
from .operators import InverseProblem
from .posterior import Posterior, load_posterior, weighted_quantile
from .sampling import sample
from .solvers import available_solvers

__version__ = "0.1.0"

__all__ = [
    "Calibration",
    "InverseProblem",
    "Posterior",
    "available_solvers",
    "calibrate",
    "load_calibration",
    "load_posterior",
    "sample",
    "weighted_quantile",
    "__version__",
]
