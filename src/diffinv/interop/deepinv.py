"""deepinv interoperability, both ways (requires the optional ``deepinv`` package).

* :func:`to_deepinv` wraps one of our operators (plus optionally a noise model) as a deepinv
  ``LinearPhysics`` (linear operators, with our exact adjoint as ``A_adjoint``) or
  ``Physics`` (nonlinear ones), so deepinv's reconstruction methods run on our physics.
* :func:`from_deepinv` wraps a deepinv ``Physics`` as our :class:`~diffinv.operators.Operator`
  (a :class:`~diffinv.operators.LinearOperator` with ``physics.A_adjoint`` for a
  ``LinearPhysics``), and :func:`problem_from_deepinv` builds an
  :class:`~diffinv.operators.InverseProblem` from a deepinv physics and its measurements,
  so deepinv users can run our samplers (``diffinv.sample``) on their problems.

Noise models: our ``GaussianNoise(sigma)`` <-> deepinv ``GaussianNoise(sigma)``, our
``PoissonNoise(gain)`` <-> deepinv ``PoissonNoise(gain, normalize=True)`` (both
``y = gain * Poisson(A x / gain)``).
"""

from __future__ import annotations

import deepinv as dinv
import torch

from ..operators.base import LinearOperator, Operator
from ..operators.noise import GaussianNoise, PoissonNoise
from ..operators.problem import InverseProblem

__all__ = ["to_deepinv", "from_deepinv", "problem_from_deepinv", "noise_to_deepinv",
           "noise_from_deepinv", "DiffinvLinearPhysics", "DiffinvPhysics", "DeepinvOperator",
           "DeepinvLinearOperator"]


def noise_to_deepinv(noise) -> torch.nn.Module:
    """Our noise model -> a deepinv noise model (``None`` -> ``ZeroNoise``)."""
    if noise is None:
        return dinv.physics.ZeroNoise()
    if isinstance(noise, GaussianNoise):
        return dinv.physics.GaussianNoise(sigma=noise.sigma)
    if isinstance(noise, PoissonNoise):
        return dinv.physics.PoissonNoise(gain=noise.gain, normalize=True)
    raise ValueError(f"noise: no deepinv equivalent for {noise!r}; expected GaussianNoise, "
                     "PoissonNoise or None")


def noise_from_deepinv(noise_model) -> GaussianNoise | PoissonNoise:
    """A deepinv noise model -> ours (Gaussian or normalised Poisson)."""
    name = type(noise_model).__name__
    if name == "GaussianNoise":
        sigma = noise_model.sigma
        if isinstance(sigma, torch.Tensor):
            if sigma.numel() != 1:
                raise ValueError("noise_model: per-item Gaussian sigmas are not supported; "
                                 "pass sigma= explicitly")
            sigma = float(sigma)
        return GaussianNoise(float(sigma))
    if name == "PoissonNoise":
        if not bool(getattr(noise_model, "normalize", True)):
            raise ValueError("noise_model: only normalize=True Poisson noise maps to ours")
        return PoissonNoise(float(noise_model.gain))
    raise ValueError(f"noise_model: no diffinv equivalent for deepinv {name}; pass sigma= "
                     "to problem_from_deepinv for Gaussian noise")


class DiffinvLinearPhysics(dinv.physics.LinearPhysics):
    """Our :class:`LinearOperator` as a deepinv ``LinearPhysics`` (exact adjoint)."""

    def __init__(self, operator: LinearOperator, noise=None, **kwargs):
        super().__init__(noise_model=noise_to_deepinv(noise), **kwargs)
        self.operator = operator

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:  # noqa: N802 - deepinv API
        return self.operator.forward(x)

    def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:  # noqa: N802
        return self.operator.adjoint(y)


class DiffinvPhysics(dinv.physics.Physics):
    """Our (nonlinear) :class:`Operator` as a deepinv ``Physics``."""

    def __init__(self, operator: Operator, noise=None, **kwargs):
        super().__init__(noise_model=noise_to_deepinv(noise), **kwargs)
        self.operator = operator

    def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:  # noqa: N802 - deepinv API
        return self.operator.forward(x)


def to_deepinv(operator: Operator, noise=None):
    """Wrap our operator (and noise model) as deepinv physics.

    Returns a :class:`DiffinvLinearPhysics` for linear operators, else a
    :class:`DiffinvPhysics`.  ``physics(x)`` then draws noisy measurements with deepinv's
    noise model; ``physics.A`` / ``physics.A_adjoint`` are our forward and exact adjoint.
    """
    if not isinstance(operator, Operator):
        raise ValueError("operator: expected a diffinv Operator")
    if isinstance(operator, LinearOperator):
        return DiffinvLinearPhysics(operator, noise)
    return DiffinvPhysics(operator, noise)


class DeepinvOperator(Operator):
    """A deepinv ``Physics`` as our (nonlinear) operator: ``forward = physics.A``."""

    def __init__(self, physics, in_shape: tuple[int, ...] | None = None):
        self.physics = physics
        self.in_shape = tuple(in_shape) if in_shape is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.A(x)

    def to(self, device):  # the physics is an nn.Module
        self.physics.to(device)
        return self


class DeepinvLinearOperator(LinearOperator):
    """A deepinv ``LinearPhysics`` as our linear operator (``physics.A``, ``A_adjoint``)."""

    def __init__(self, physics, in_shape: tuple[int, ...] | None = None):
        self.physics = physics
        self.in_shape = tuple(in_shape) if in_shape is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.A(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.physics.A_adjoint(y)

    def to(self, device):
        self.physics.to(device)
        self.__dict__.pop("H", None)
        return self


def from_deepinv(physics, in_shape: tuple[int, ...] | None = None) -> Operator:
    """Wrap a deepinv physics as our operator (linear if it is a ``LinearPhysics``).

    Parameters
    ----------
    physics : deepinv.physics.Physics
    in_shape : tuple of int, optional
        Per-item image shape ``(C, H, W)`` (used by ``to_matrix`` and the samplers).
    """
    if not isinstance(physics, dinv.physics.Physics):
        raise ValueError("physics: expected a deepinv.physics.Physics")
    if isinstance(physics, DiffinvLinearPhysics | DiffinvPhysics):
        return physics.operator
    if isinstance(physics, dinv.physics.LinearPhysics):
        return DeepinvLinearOperator(physics, in_shape)
    return DeepinvOperator(physics, in_shape)


def problem_from_deepinv(physics, y: torch.Tensor, sigma: float | None = None,
                         image_shape: tuple[int, ...] | None = None) -> InverseProblem:
    """An :class:`InverseProblem` from a deepinv physics and measurements ``y``.

    The noise model is taken from ``physics.noise_model`` unless ``sigma`` (Gaussian noise
    standard deviation) is given.
    """
    noise = GaussianNoise(float(sigma)) if sigma is not None else noise_from_deepinv(
        physics.noise_model)
    return InverseProblem(from_deepinv(physics, image_shape), noise, y, image_shape=image_shape)
