"""diffinv: scientific imaging inverse problems with diffusion-model priors.

The three contracts are an :class:`~diffinv.operators.Operator`, a noise model, and a
denoiser prior ``D(x, sigma)``; :func:`sample` runs a registered solver and returns a
:class:`Posterior`.
"""

from .operators import InverseProblem
from .sampling import sample
from .solvers import Posterior, available_solvers, load_posterior

__version__ = "0.1.0"

__all__ = [
    "InverseProblem",
    "Posterior",
    "available_solvers",
    "load_posterior",
    "sample",
    "__version__",
]
