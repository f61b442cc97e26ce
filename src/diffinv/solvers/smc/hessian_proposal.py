r"""TDS proposal with the likelihood's curvature: Gaussian with a low-rank Hessian precision.

The twisted diffusion sampler (:mod:`diffinv.solvers.smc.tds`) proposes
``x' ~ N(mu + c v e g, v I)`` from the model's backward kernel ``N(mu, v I)`` and the twist's
gradient ``e g`` at the current particle ``x``.  The isotropic noise ``sqrt(v) xi`` moves a
sharp twist (closure phases: curvature ~1e9 per Jy^2) by several nats along its stiff
directions, so the incremental weights scatter by that much whatever the exponent, and the
particles are resampled down to a few ancestors at every second step.

This proposal is the Gaussian that multiplies the backward kernel by a second-order
expansion of the twist around ``x`` (the locally optimal proposal of Doucet, Godsill &
Andrieu 2000, "On sequential Monte Carlo sampling methods for Bayesian filtering", in its
Laplace form; Wu et al. 2023 use the first-order term only):

.. math:: q(x') = N\big(x';\ m,\ P^{-1}\big), \qquad
          P = \frac{I}{v} + e H, \qquad
          m = x + P^{-1}\Big(\frac{\mu - x}{v} + e g\Big),

with ``H`` the Hessian of ``-log p(y | x_0)`` at the particles' (weighted) mean denoised image
-- one for all particles, so the denoiser's Jacobian is taken as the identity there --
kept as its leading eigenpairs ``H ~ W diag(lam) W^T + lam_rest (I - W W^T)``
(:func:`diffinv.solvers.curvature.likelihood_hessian`, ``rank`` directions;
``lam_rest`` = the smallest kept eigenvalue, a bound on the directions not resolved).  With
``H = 0`` it is the undamped proposal of Wu et al.; with ``H = L I`` it is the scalar-damped
proposal of :mod:`~diffinv.solvers.smc.tds`.  Along the stiff directions the noise shrinks to
``(1/v + e lam)^{-1/2}`` and the shift becomes a Newton step.

Any proposal keeps the sampler asymptotically exact; the weight uses its exact density:

.. math:: \log\frac{N(x'; \mu, v I)}{q(x')} = -\frac{|x' - \mu|^2}{2 v} + \frac{|\xi|^2}{2}
          - \frac12 \sum_i \log(1 + v e \lambda_i) - \frac{n - k}{2} \log(1 + v e \lambda_{rest}),

``x' = m + P^{-1/2} xi``, ``xi ~ N(0, I_n)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..curvature import likelihood_hessian

__all__ = ["HessianProposal", "default_rank"]

#: default number of Hessian directions: the data's real degrees of freedom plus this margin
RANK_MARGIN = 8
#: default cap on the number of Hessian directions (each costs 4 likelihood gradients a step)
MAX_DEFAULT_RANK = 512


def default_rank(problem, n: int) -> int:
    """``min(n, data values + 8, 512)``: the data's real degrees of freedom bound the rank of
    a Gauss-Newton Hessian (complex data count twice)."""
    y = problem.y
    dof = y.numel() * (2 if y.is_complex() else 1)
    return max(1, min(n, dof + RANK_MARGIN, MAX_DEFAULT_RANK))


@dataclass
class HessianProposal:
    """The low-rank Hessian proposal (module docstring).

    Parameters
    ----------
    problem : InverseProblem
        Supplies the likelihood's gradients.
    rank : int
        Hessian directions estimated at each step that uses the proposal.
    generator : torch.Generator, optional
        Draws the range finder's probes.

    Attributes
    ----------
    updates : int
        Steps at which the Hessian was estimated.
    seconds : float
        Wall time spent estimating it.
    """

    problem: object
    rank: int
    generator: torch.Generator | None = None
    updates: int = 0
    seconds: float = 0.0

    def draw(self, x: torch.Tensor, x0: torch.Tensor, weights: torch.Tensor,
             mean: torch.Tensor, var: float, grad: torch.Tensor, exponent: float,
             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Propose from every particle.

        Parameters
        ----------
        x, x0 : torch.Tensor
            ``(N, *shape)`` particles and their denoised images.
        weights : torch.Tensor
            ``(N,)`` normalised weights (for the expansion point, the weighted mean of
            ``x0``).
        mean, var : torch.Tensor, float
            The backward kernel ``N(mean, var I)``.
        grad : torch.Tensor
            ``(N, *shape)`` gradient of the log twist (before the exponent).
        exponent : float
            The twist's exponent ``e``.

        Returns
        -------
        (x_new, log_ratio)
            ``(N, *shape)`` proposals and ``(N,)`` float64
            ``log N(x_new; mean, var I) - log q(x_new)``.
        """
        t0 = time.perf_counter()
        w = weights.to(torch.float64)
        ref = (w[:, None] * x0.reshape(x0.shape[0], -1).to(torch.float64)).sum(0)
        basis, lam = likelihood_hessian(self.problem, ref.to(x0.dtype).reshape(1, *x0.shape[1:]),
                                        self.rank, generator=self.generator)
        self.updates += 1
        self.seconds += time.perf_counter() - t0
        n_par, n = x.shape[0], x[0].numel()
        k = lam.shape[0]
        lam_rest = float(lam[-1]) if k < n else 0.0
        a = 1.0 / var + exponent * lam  # precision along W
        a_rest = 1.0 / var + exponent * lam_rest

        def solve(z: torch.Tensor) -> torch.Tensor:  # P^{-1} z, rows of z
            return z / a_rest + ((z @ basis) * (1.0 / a - 1.0 / a_rest)) @ basis.T

        def sqrt_solve(z: torch.Tensor) -> torch.Tensor:  # P^{-1/2} z
            return z / a_rest**0.5 + ((z @ basis) * (a**-0.5 - a_rest**-0.5)) @ basis.T

        xf = x.reshape(n_par, -1).to(torch.float64)
        mu = mean.reshape(n_par, -1).to(torch.float64)
        g = grad.reshape(n_par, -1).to(torch.float64)
        m = xf + solve((mu - xf) / var + exponent * g)
        xi = torch.randn(xf.shape, dtype=torch.float64, device=xf.device, generator=generator)
        x_new = m + sqrt_solve(xi)
        log_det = (torch.log1p(var * exponent * lam).sum()
                   + (n - k) * torch.log1p(torch.tensor(var * exponent * lam_rest,
                                                        dtype=torch.float64)))
        log_ratio = (-0.5 * ((x_new - mu) ** 2).sum(1) / var + 0.5 * (xi**2).sum(1)
                     - 0.5 * log_det)
        return x_new.to(x.dtype).reshape(x.shape), log_ratio

    def diagnostics(self) -> dict:
        """``proposal``, ``proposal_rank``, ``hessian_updates`` and ``hessian_seconds``."""
        return {"proposal": "hessian", "proposal_rank": self.rank,
                "hessian_updates": self.updates, "hessian_seconds": self.seconds}
