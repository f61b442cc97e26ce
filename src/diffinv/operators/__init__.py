"""Forward models (operators), noise models and inverse problems.

Contracts: :class:`Operator` / :class:`LinearOperator` (exact adjoints, ``.H``, ``@``),
noise models with ``sample`` / ``log_likelihood``, and :class:`InverseProblem`.
Domain operators live in submodules (``mri``, ``ct``, ``phase_retrieval``,
``interferometry``); :mod:`diffinv.operators.testing` holds checks for user operators.
"""

from .base import (
    AdjointOperator,
    ComposedLinearOperator,
    ComposedOperator,
    LinearOperator,
    Operator,
    ScaledLinearOperator,
    SumLinearOperator,
)
from .elementary import Diagonal, ElementwiseOperator, Identity, MatrixOperator, RealToComplex
from .lognormal import LogNormalField
from .noise import GaussianNoise, NoiseModel, PoissonNoise, check_finite
from .problem import InverseProblem

__all__ = [
    "AdjointOperator",
    "ComposedLinearOperator",
    "ComposedOperator",
    "Diagonal",
    "ElementwiseOperator",
    "GaussianNoise",
    "Identity",
    "InverseProblem",
    "LinearOperator",
    "LogNormalField",
    "MatrixOperator",
    "NoiseModel",
    "Operator",
    "PoissonNoise",
    "RealToComplex",
    "ScaledLinearOperator",
    "SumLinearOperator",
    "check_finite",
]
