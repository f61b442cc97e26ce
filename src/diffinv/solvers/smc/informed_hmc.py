r"""HMC with a likelihood-informed metric, for tempered SMC on priors with a density.

The target of one level of likelihood tempering is

.. math:: \pi_\lambda(x) \propto p(x)\, L(x)^\lambda, \qquad 0 \le \lambda \le 1,

with ``p`` a prior whose log density is exact (``prior.log_prob``) and ``L = p(y | x)``.  In
an image of ``n`` pixels, a sharp likelihood makes ``pi`` stiff in the few directions the
data decide and leaves it as wide as the prior in the others; an isotropic (or per-pixel)
step is bounded by the stiffest direction and barely moves the rest.  The metric here is the
tempered target's curvature at the particles' weighted mean ``xbar``, written in the prior's
whitened coordinates ``z`` (``x = m + R z`` with ``R R^T = C`` the prior covariance):

.. math:: M_\lambda = I + \lambda H, \qquad
          H = R^T \big(-\nabla^2 \log L(\bar x)\big) R,

``H`` from central differences of the likelihood's gradient along the columns of ``R`` (a
batch of ``2 n`` gradients; eigenvalues clamped at zero so the metric is positive definite
where the likelihood is not log-concave).  With ``M = V diag(d) V^T`` the leapfrog moves
``x`` along ``S = R V diag(d^{-1/2})``, i.e. HMC with the mass matrix ``(S S^T)^{-1}``, the
Laplace approximation's precision of ``pi``: every direction, stiff or prior-dominated, then
has unit scale (the "likelihood-informed" subspace of Cui, Law & Marzouk 2016, "Dimension-
independent likelihood-informed MCMC", J. Comput. Phys. 304, kept here as a full metric).

The metric is fixed from the population before a level's moves, so each sweep is a
Metropolis-Hastings kernel that leaves ``pi_lambda`` exactly invariant whatever the metric
(Neal 2011, "MCMC using Hamiltonian dynamics"); adapting it to the particles between levels
is the standard practice of SMC samplers (Chopin 2002; Buchholz, Chopin & Jacob 2021,
"Adaptive tuning of Hamiltonian Monte Carlo within sequential Monte Carlo", Bayesian Anal.
16(3)).  The leapfrog step is adapted between sweeps to a target acceptance (Robbins-Monro on
its logarithm with the population's acceptance rate).

Dense ``(n, n)`` float64 matrices: up to :data:`MAX_DIM` pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["MAX_DIM", "InformedHMC", "prior_root", "whitened_hessian"]

MAX_DIM = 4096  # pixels up to which the dense metric is built (4 (n, n) float64 matrices)
ADAPT_GAIN = 2.0  # Robbins-Monro gain on log(eps) per sweep
HESSIAN_STEP = 1e-3  # central-difference step in whitened units (prior standard deviations)
MAX_STEP = 1.5  # largest leapfrog step (whitened units; stability limit 2 for unit curvature)

GradFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def prior_root(prior, n: int, generator: torch.Generator | None,
               draws: int | None = None) -> torch.Tensor:
    """``R`` ``(n, n)`` float64 with ``R R^T`` the prior's covariance.

    From the exact covariance where the prior has one (``prior.cov``, e.g.
    :class:`~diffinv.priors.GaussianPrior`), else from the covariance of ``draws`` (default
    ``max(4 n, 2048)``) prior draws.  Only the metric uses it, so an estimate costs
    efficiency, never correctness.
    """
    cov = getattr(prior, "cov", None)
    if not isinstance(cov, torch.Tensor) or cov.shape != (n, n):
        m = draws if draws is not None else max(4 * n, 2048)
        xs = prior.sample(m, generator=generator, dtype=torch.float64).reshape(m, n)
        xs = xs - xs.mean(0)
        cov = xs.T @ xs / (m - 1)
    evals, evecs = torch.linalg.eigh(cov.to(torch.float64))
    return evecs * evals.clamp(min=0.0).sqrt()


def whitened_hessian(grad_log_lik: GradFn, centre: torch.Tensor, root: torch.Tensor,
                     max_batch: int | None, step: float = HESSIAN_STEP) -> torch.Tensor:
    """``R^T (-hess log L)(centre) R`` ``(n, n)`` float64 by central differences.

    ``grad_log_lik(x)`` maps ``(B, n)`` float64 points to ``(log L, grad)``; ``centre``
    ``(n,)``; ``root`` ``R`` ``(n, n)``.  ``2 n`` gradient evaluations in batches of
    ``max_batch`` (default 256).  Returned symmetrised; non-finite differences count as
    zero curvature.
    """
    n = centre.numel()
    batch = max_batch or 256
    cols = []
    for lo in range(0, n, batch):
        r = root[:, lo:lo + batch].T  # (b, n) directions
        pts = torch.cat([centre + step * r, centre - step * r])
        g = grad_log_lik(pts)[1]
        b = r.shape[0]
        cols.append(-(g[:b] - g[b:]) / (2.0 * step))  # (b, n): -hess @ r_j, per row
    hr = torch.cat(cols).T  # (n, n): column j = -hess @ r_j
    # a gradient that is not finite (a point outside the likelihood's domain) gives that
    # direction no curvature: the metric there falls back to the prior's
    h = root.T @ torch.nan_to_num(hr, nan=0.0, posinf=0.0, neginf=0.0)
    return 0.5 * (h + h.T)


class InformedHMC:
    """HMC moves on ``p(x) L(x)^lambda`` with the metric of the module docstring.

    Parameters
    ----------
    log_prior : callable
        ``(B, n)`` float64 -> ``(B,)`` exact log prior density (differentiable).
    grad_log_lik : callable
        ``(B, n)`` float64 -> ``(log L (B,), grad (B, n))``, float64.
    root : torch.Tensor
        ``R`` ``(n, n)`` of :func:`prior_root`.
    n_moves, n_leapfrog : int
        Sweeps per level and leapfrog steps per trajectory (one: MALA).
    target_acceptance : float
        Acceptance the step adapts to, in (0, 1).
    generator : torch.Generator
        Random source.
    max_batch : int or None
        Points per likelihood-gradient call while differencing for the metric.

    Attributes
    ----------
    acceptance, steps : list of float
        Population acceptance rate and leapfrog step of every sweep.
    evaluations : int
        Likelihood-gradient evaluations per particle (moves and metric).
    """

    def __init__(self, log_prior: Callable, grad_log_lik: GradFn, root: torch.Tensor,
                 n_moves: int, n_leapfrog: int, target_acceptance: float,
                 generator: torch.Generator | None, max_batch: int | None = None):
        self.log_prior, self.grad_log_lik, self.root = log_prior, grad_log_lik, root
        self.n_moves, self.n_leapfrog = n_moves, n_leapfrog
        self.target, self.generator, self.max_batch = target_acceptance, generator, max_batch
        n = root.shape[0]
        self.step = min(1.0, 1.5 * n ** -0.25)  # scaling of HMC's step with the dimension
        self.acceptance: list[float] = []
        self.steps: list[float] = []
        self.evaluations = 0

    def metric(self, x: torch.Tensor, w: torch.Tensor, lam: float) -> torch.Tensor:
        """``S`` ``(n, n)``: the leapfrog's position map at exponent ``lam`` for particles
        ``x`` ``(N, n)`` with normalised weights ``w`` ``(N,)``."""
        centre = (w[:, None] * x).sum(0)
        h = whitened_hessian(self.grad_log_lik, centre, self.root, self.max_batch)
        self.evaluations += math.ceil(2 * x.shape[1] / x.shape[0])
        d, v = torch.linalg.eigh(torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
                                 + lam * h)
        return self.root @ (v * d.clamp(min=1.0).rsqrt())

    def _grad(self, x: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor,
                                                          torch.Tensor]:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            lp = self.log_prior(xg)
            (gp,) = torch.autograd.grad(lp.sum(), xg)
        ell, gl = self.grad_log_lik(x)
        self.evaluations += 1
        return lp.detach(), ell, gp + lam * gl

    def move(self, x: torch.Tensor, w: torch.Tensor,
             lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_moves`` sweeps of every particle ``x`` ``(N, n)`` float64 (normalised weights
        ``w`` ``(N,)``, which set the metric); returns the moved particles and their float64
        log-likelihoods ``(N,)`` (new tensors)."""
        s = self.metric(x, w, lam)
        state = self._grad(x, lam)
        for _ in range(self.n_moves):
            x, state = self._sweep(x, state, s, lam)
        return x, state[1]

    def _sweep(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               s: torch.Tensor, lam: float):
        """One HMC transition of every particle from ``x`` with its ``(log prior, log
        likelihood, gradient)`` ``state``; returns the new positions and their state (the
        accepted end points' values, evaluated on the trajectory, else the old ones)."""
        eps = self.step
        lp0, ell0, g0 = state
        u = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)
        kinetic0 = 0.5 * (u**2).sum(1)
        u = u + 0.5 * eps * g0 @ s
        y = x
        for j in range(self.n_leapfrog):
            y = y + eps * u @ s.T
            lp, ell, g = self._grad(y, lam)
            u = u + (0.5 if j == self.n_leapfrog - 1 else 1.0) * eps * g @ s
        log_alpha = (lp + lam * ell) - (lp0 + lam * ell0) - 0.5 * (u**2).sum(1) + kinetic0
        log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
        r = torch.rand(x.shape[0], dtype=torch.float64, device=x.device,
                       generator=self.generator)
        accept = torch.log(r) < log_alpha
        rate = float(accept.to(torch.float64).mean())
        self.acceptance.append(rate)
        self.steps.append(eps)
        self.step = min(eps * math.exp(ADAPT_GAIN * (rate - self.target)), MAX_STEP)
        rows = accept[:, None]
        return torch.where(rows, y, x), (torch.where(accept, lp, lp0),
                                         torch.where(accept, ell, ell0),
                                         torch.where(rows, g, g0))

    def diagnostics(self) -> dict:
        """Acceptance and step of every sweep, likelihood-gradient evaluations."""
        return {"move_acceptance": list(self.acceptance), "move_steps": list(self.steps),
                "move_evaluations": self.evaluations}
