"""The small built-in default: a smooth random field seen through a random projection.

A 16x16 image drawn from a Gaussian prior with a squared-exponential covariance
(correlation length 3 pixels, unit variance) is observed through 96 random Gaussian
projections with Gaussian noise (sigma 0.1).  The exact posterior is known, so the demo
also shows how close the sampler is to it.

The prior is the analytic Gaussian the truth is drawn from, and stays so: the exact
posterior exists only for it, and checking samplers against it is this demo's purpose
(``tests/demos/test_defaults.py``).  ``diffinv reconstruct --problem gaussian-field
--prior ...`` is therefore refused (no learned prior is trained on such fields either).
"""

from __future__ import annotations

import torch

from ..operators import GaussianNoise, InverseProblem, MatrixOperator
from ..priors import GaussianPrior
from .registry import Demo, register_demo


def squared_exponential_cov(size: int, length: float, variance: float = 1.0) -> torch.Tensor:
    """Covariance ``v exp(-|p - q|^2 / (2 l^2))`` between pixels of a ``size x size`` grid."""
    ii, jj = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pts = torch.stack([ii.reshape(-1), jj.reshape(-1)], 1).to(torch.float64)
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    return variance * torch.exp(-d2 / (2 * length**2)) + 1e-6 * torch.eye(
        size * size, dtype=torch.float64
    )


@register_demo("gaussian-field")
def build(
    seed: int = 0, size: int = 16, n_measurements: int = 96, noise_sigma: float = 0.1
) -> Demo:
    """Smooth 16x16 random field from 96 random projections (exact posterior known).

    ``seed`` fixes the truth, the operator and the noise.
    """
    g = torch.Generator().manual_seed(seed)
    prior = GaussianPrior(torch.zeros(1, size, size), squared_exponential_cov(size, 3.0))
    a = torch.randn(n_measurements, size * size, dtype=torch.float64, generator=g) / size
    op = MatrixOperator(a.to(torch.float32), in_shape=(1, size, size))
    x_true = prior.sample(1, generator=g, dtype=torch.float32)
    noise = GaussianNoise(noise_sigma)
    y = noise.sample(op(x_true), generator=g)
    problem = InverseProblem(op, noise, y)
    return Demo(
        problem=problem,
        prior=prior,
        x_true=x_true,
        description=(
            f"{size}x{size} Gaussian random field (unitless) from {n_measurements} random "
            f"projections with Gaussian noise sigma={noise_sigma}; exact posterior known"
        ),
        # DAPS with the exact (CG) data step and Tweedie x0 estimates is the best calibrated
        # solver here (benchmarks/README.md, "Built-in problems")
        solver_defaults={
            "solver": "daps",
            "steps": 400,
            "options": {"ode_steps": 1},
        },
        to_image=lambda x: x[:, 0],
        metadata={"units": "dimensionless", "exact_posterior": True},
    )
