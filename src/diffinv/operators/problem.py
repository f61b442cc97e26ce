"""InverseProblem: an operator, a noise model and the measured data, joined.

Samplers see only the problem: :meth:`InverseProblem.log_likelihood` and
:meth:`InverseProblem.grad_log_likelihood` for any differentiable model, and, for
linear operators with Gaussian noise, ``operator`` / ``sigma`` so exact steps can use them.
"""

from __future__ import annotations

import torch

from .base import LinearOperator, Operator
from .noise import GaussianNoise, NoiseModel, check_finite

__all__ = ["InverseProblem"]


class InverseProblem:
    """The likelihood ``p(y | x)`` of measured data under a forward model and noise model.

    Parameters
    ----------
    operator : Operator
        Forward model ``A``; any callable object with a ``forward``/``__call__`` taking
        ``(batch, *image_shape)`` tensors works.
    noise : NoiseModel
        Object with ``log_likelihood(y, y_clean)``, ``chi2``, ``n_data`` and ``sample``.
    y : torch.Tensor
        Measured data of shape ``(1, *out_shape)`` as returned by ``operator(x)`` for a single
        image (a leading batch dimension of 1 is added when missing and ``operator.out_shape``
        says so).  It is broadcast over every chain.  NaN/Inf are rejected.
    image_shape : tuple of int, optional
        Per-item shape of ``x``; defaults to ``operator.in_shape``.  Solvers use it to draw
        initial states.
    """

    def __init__(
        self,
        operator: Operator,
        noise: NoiseModel,
        y: torch.Tensor,
        image_shape: tuple[int, ...] | None = None,
    ):
        if not callable(operator):
            raise ValueError("operator: expected an Operator (a callable forward model)")
        for method in ("log_likelihood", "chi2", "n_data"):
            if not callable(getattr(noise, method, None)):
                raise ValueError(f"noise: expected a noise model with a {method}() method")
        check_finite("y", y)
        check_data = getattr(noise, "check_data", None)
        if callable(check_data):  # e.g. counts must be non-negative for Poisson models
            check_data(y)
        out_shape = getattr(operator, "out_shape", None)
        if out_shape is not None:
            if tuple(y.shape) == tuple(out_shape):
                y = y.unsqueeze(0)
            if tuple(y.shape[1:]) != tuple(out_shape):
                raise ValueError(
                    f"y: expected shape (1, {', '.join(map(str, out_shape))}) to match "
                    f"operator.out_shape, got {tuple(y.shape)}"
                )
        if y.ndim == 0 or y.shape[0] != 1:
            raise ValueError(
                f"y: expected one measurement with a leading batch axis of 1, got shape "
                f"{tuple(y.shape)}; solve several measurements as separate problems"
            )
        self.operator = operator
        self.noise = noise
        self.y = y
        shape = image_shape if image_shape is not None else getattr(operator, "in_shape", None)
        self.image_shape = tuple(shape) if shape is not None else None

    # -- likelihood -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clean measurements ``A(x)`` for a batch."""
        y_clean = self.operator(x)
        if self.y.is_complex() and not y_clean.is_complex():
            raise ValueError(
                "y: complex data but the operator returns real values; a real model cannot "
                "fit the imaginary part (use a complex operator or pass the real part)"
            )
        if y_clean.is_complex() and not self.y.is_complex() and isinstance(
            self.noise, GaussianNoise
        ):
            raise ValueError(
                "y: real data but the operator returns complex values; pass complex data "
                "(or an operator with real output)"
            )
        if y_clean.shape[1:] != self.y.shape[1:]:
            raise ValueError(
                f"x: operator output {tuple(y_clean.shape)} does not match the data "
                f"{tuple(self.y.shape)}; check the image shape"
            )
        return y_clean

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(y | x)`` per batch item, shape ``(batch,)``; differentiable."""
        return self.noise.log_likelihood(self.y, self.forward(x))

    def grad_log_likelihood(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(log p(y|x), grad_x log p(y|x))`` for a batch (gradient per item)."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            ll = self.log_likelihood(xg)
            (grad,) = torch.autograd.grad(ll.sum(), xg)
        return ll.detach(), grad

    def chi2(self, x: torch.Tensor) -> torch.Tensor:
        """Chi-square of the data misfit per batch item."""
        return self.noise.chi2(self.y, self.forward(x))

    def reduced_chi2(self, x: torch.Tensor) -> torch.Tensor:
        """Chi-square divided by the number of real data values, per batch item."""
        return self.chi2(x) / self.noise.n_data(self.y)

    def residual_norm(self, x: torch.Tensor) -> torch.Tensor:
        """The noise model's residual norm per item (DPS's normalised step uses it)."""
        return self.noise.residual_norm(self.y, self.forward(x))

    # -- structure that exact solvers use ----------------------------------------------------
    @property
    def is_linear_gaussian(self) -> bool:
        """True when the operator is linear and the noise Gaussian (closed forms apply)."""
        return isinstance(self.operator, LinearOperator) and isinstance(self.noise, GaussianNoise)

    @property
    def sigma(self) -> float | torch.Tensor:
        """Noise standard deviation of a Gaussian problem."""
        if not isinstance(self.noise, GaussianNoise):
            raise ValueError("noise: sigma is defined only for GaussianNoise")
        return self.noise.sigma

    def to(self, device: torch.device | str) -> InverseProblem:
        """Move the operator, the data and the noise model's tensors to ``device`` in place;
        return self.  The operator and the noise model are moved through their own ``to``
        methods where they have one (see :class:`~diffinv.operators.noise.NoiseModel`)."""
        for part in (self.operator, self.noise):
            move = getattr(part, "to", None)
            if callable(move):
                move(device)
        self.y = self.y.to(device)
        return self

    def __repr__(self) -> str:
        return f"InverseProblem({self.operator!r}, {self.noise!r}, y{tuple(self.y.shape)})"
