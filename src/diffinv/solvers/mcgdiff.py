r"""SMC with an operator-exact Gaussian proposal for linear-Gaussian problems (MCGdiff family).

After Cardoso, Janati El Idrissi, Le Corff & Moulines (ICLR 2024), "Monte Carlo guided
diffusion for Bayesian linear inverse problems" (MCGdiff), and Dou & Song (ICLR 2024),
"Diffusion posterior sampling for linear inverse problem solving: a filtering perspective"
(FPS).  The formulation below is our own VE version of that family.

Setting.  ``y = A x + n``, ``n ~ N(0, Gamma)`` with diagonal ``Gamma`` (complex data are
stacked as real and imaginary rows, see :func:`diffinv.priors.linear_gaussian
.real_linear_system`).  Whitening and the SVD ``Gamma^{-1/2} A = U S V^T`` (rank ``r``)
turn the likelihood into independent scalar observations of the coordinates
``xbar = V^T x``:

.. math:: \bar y_i = \bar x_i + \rho_i \epsilon_i,\quad
          \bar y_i = (U^T \Gamma^{-1/2} y)_i / s_i,\quad \rho_i = 1 / s_i,\quad i < r,

and ``p(y | x) = C prod_i N(ybar_i; xbar_i, rho_i^2)`` with a constant ``C`` (kept, so the
log-evidence is that of ``y``).

Feynman-Kac model.  The diffusion model defines a backward chain ``x_{k+1} ~ N(mu_k(x_k),
v_k I)`` (:func:`~diffinv.solvers.particles.reverse_kernel` with the denoiser's estimate).
We use the potentials

.. math:: g_k(x) = \prod_{i<r} N(\bar y_i;\ \bar x_i,\ \rho_i^2 + \sigma_k^2),

which equal the exact likelihood at ``sigma = 0`` (the final level), so the weighted
particles target ``p_model(x_0) p(y | x_0)`` exactly as the particle count grows, whatever
the intermediate potentials.  Because ``g_{k+1}`` is Gaussian and linear in ``x_{k+1}`` and the
kernel covariance is isotropic (diagonal in any orthonormal basis), the locally optimal
proposal ``q(x_{k+1} | x_k) \propto N(x_{k+1}; mu_k, v_k) g_{k+1}(x_{k+1})`` is Gaussian in
closed form (coordinate-wise in ``xbar``) and the incremental weight
``N(ybar; mubar_k, v_k + rho^2 + sigma_{k+1}^2) / g_k(x_k)`` depends on ``x_k`` only: the
scheme is the fully adapted auxiliary particle filter (weight, resample, then move).  One
denoiser call per particle and step.

Operators.  The SVD is computed from the dense matrix (``LinearOperator.to_matrix``), so this
method is for problems with at most :data:`MAX_DIM` unknowns; larger problems should use
``method="tds"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..priors.linear_gaussian import real_linear_system
from .particles import ParticleWeights, denoise, gather, log_normal, reverse_kernel
from .registry import SolverOutput, check_state
from .utils import progress_bar

__all__ = ["MAX_DIM", "SVDLikelihood", "run_mcgdiff"]

MAX_DIM = 8192  # largest number of unknowns for which the dense SVD is built


@dataclass
class SVDLikelihood:
    """A linear-Gaussian likelihood in the coordinates of the whitened operator's SVD.

    Attributes
    ----------
    v : torch.Tensor
        ``(n, n)`` float64 orthogonal matrix; ``xbar = x_flat @ v``.
    ybar : torch.Tensor
        ``(r,)`` float64 observations of the first ``r`` coordinates.
    rho2 : torch.Tensor
        ``(r,)`` float64 noise variances of ``ybar``.
    log_const : float
        ``log p(y | x) - sum_i log N(ybar_i; xbar_i, rho2_i)`` (independent of ``x``).
    """

    v: torch.Tensor
    ybar: torch.Tensor
    rho2: torch.Tensor
    log_const: float

    @property
    def rank(self) -> int:
        """Number of observed coordinates."""
        return int(self.ybar.numel())

    @classmethod
    def from_problem(cls, problem, image_shape: tuple[int, ...], rtol: float = 1e-10):
        """Build from a linear-Gaussian :class:`InverseProblem` (dense SVD, float64)."""
        n = math.prod(image_shape)
        if n > MAX_DIM:
            raise ValueError(
                f"method: 'mcgdiff' builds a dense SVD and supports at most {MAX_DIM} unknowns, "
                f"got {n}; use method='tds'"
            )
        a, y, var = real_linear_system(problem, image_shape)
        std = var.sqrt()
        aw, yw = a / std[:, None], y / std
        u, s, vh = torch.linalg.svd(aw, full_matrices=True)
        r = int((s > rtol * float(s.max())).sum()) if s.numel() else 0
        if r == 0:
            raise ValueError("problem: the operator is zero; there is nothing to condition on")
        uy = u[:, :r].T @ yw
        ybar = uy / s[:r]
        rho2 = 1.0 / s[:r] ** 2
        m = yw.numel()
        perp = float((yw**2).sum() - (uy**2).sum())
        log_const = (
            -0.5 * max(perp, 0.0)
            - float(torch.log(std).sum())
            - 0.5 * (m - r) * math.log(2 * math.pi)
            - float(torch.log(s[:r]).sum())
        )
        return cls(v=vh.T.contiguous(), ybar=ybar, rho2=rho2, log_const=log_const)

    def coords(self, x: torch.Tensor) -> torch.Tensor:
        """``xbar = V^T x`` in float64, ``(N, n)``."""
        return x.reshape(x.shape[0], -1).to(torch.float64) @ self.v

    def log_potential(self, xbar: torch.Tensor, extra_var: float) -> torch.Tensor:
        """``sum_i log N(ybar_i; xbar_i, rho2_i + extra_var)``, ``(N,)`` float64."""
        r = self.rank
        return log_normal(self.ybar, xbar[:, :r], self.rho2 + extra_var)


def run_mcgdiff(
    problem,
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    sigmas: torch.Tensor,
    n_samples: int,
    image_shape: tuple[int, ...],
    dtype: torch.dtype,
    generator: torch.Generator,
    weights: ParticleWeights,
    max_batch: int | None,
    callback=None,
    progress: bool = False,
) -> SolverOutput:
    """Run the operator-exact SMC sampler (see the module docstring).

    Returns
    -------
    SolverOutput
        ``samples`` ``(n_samples, *image_shape)`` particles, ``weights`` ``(n_samples,)``
        float64 normalised, ``nfe = steps`` and the particle diagnostics of ``weights``.
    """
    if not problem.is_linear_gaussian:
        raise ValueError(
            "method: 'mcgdiff' needs a LinearOperator with GaussianNoise; use method='tds'"
        )
    device = problem.y.device
    lik = SVDLikelihood.from_problem(problem, image_shape)
    lik.v, lik.ybar, lik.rho2 = lik.v.to(device), lik.ybar.to(device), lik.rho2.to(device)
    r, n = lik.rank, lik.v.shape[0]
    steps = len(sigmas) - 1

    def sample_proposal(mean_bar: torch.Tensor, var: float, sigma_next: float) -> torch.Tensor:
        """Draw xbar from N(mean_bar, var) * g(sigma_next), return flat x in float64."""
        out = mean_bar.clone()
        z = torch.randn(mean_bar.shape, dtype=torch.float64, device=device, generator=generator)
        c = lik.rho2 + sigma_next**2
        prec = 1.0 / var + 1.0 / c
        out[:, :r] = (mean_bar[:, :r] / var + lik.ybar / c) / prec
        std = torch.full((n,), math.sqrt(var), dtype=torch.float64, device=device)
        std[:r] = prec.rsqrt()
        return (out + std * z) @ lik.v.T

    # Initial particles: N(0, s0^2 I) * g_0, exactly; equal weights, evidence of g_0.
    s0 = float(sigmas[0])
    zero = torch.zeros((n_samples, n), dtype=torch.float64, device=device)
    weights.log_evidence = float(log_normal(lik.ybar, zero[:1, :r], lik.rho2 + 2 * s0**2)[0])
    x = sample_proposal(zero, s0**2, s0).to(dtype).reshape(n_samples, *image_shape)
    check_state(x, 0, "SMC (mcgdiff) state")
    for i in progress_bar(range(steps), progress, "smc-mcgdiff"):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        x0, _, _ = denoise(prior, x, s, max_batch)
        check_state(x0, i, "SMC (mcgdiff) denoised estimate")
        mean, var = reverse_kernel(x.to(torch.float64), x0.to(torch.float64), s, s_next)
        mean_bar = lik.coords(mean)
        log_inc = lik.log_potential(mean_bar, var + s_next**2) - lik.log_potential(
            lik.coords(x), s**2
        )
        weights.reweight(log_inc, i)
        if var > 0.0:
            idx = weights.maybe_resample(i)
            (mean_bar,) = gather(idx, mean_bar)
            x = sample_proposal(mean_bar, var, s_next).to(dtype).reshape(x.shape)
        else:  # the last step to sigma = 0 is deterministic: x0 = D(x, sigma_min)
            x = mean.to(dtype)
        check_state(x, i, "SMC (mcgdiff) state")
        if callback is not None:
            callback({"step": i, "sigma": s, "x": x, "x0_hat": x0,
                      "ess": weights.ess_history[-1]})
    weights.log_evidence += lik.log_const
    diagnostics = {"method": "mcgdiff", "rank": r, **weights.diagnostics()}
    return SolverOutput(samples=x.detach(), nfe=steps, weights=weights.weights,
                        diagnostics=diagnostics)
