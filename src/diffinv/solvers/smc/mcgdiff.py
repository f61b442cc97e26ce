r"""SMC with an operator-exact Gaussian proposal for linear-Gaussian problems (MCGdiff family).

After Cardoso, Janati El Idrissi, Le Corff & Moulines (ICLR 2024), "Monte Carlo guided
diffusion for Bayesian linear inverse problems" (MCGdiff), and Dou & Song (ICLR 2024),
"Diffusion posterior sampling for linear inverse problem solving: a filtering perspective"
(FPS).  The formulation below is our own VE version of that family.

Setting.  ``y = A x + n``, ``n ~ N(0, Gamma)`` with diagonal ``Gamma`` (complex data are
stacked as real and imaginary rows, see :func:`diffinv.operators.linear_gaussian
.real_linear_system`).  Whitening and the SVD ``Gamma^{-1/2} A = U S V^T`` (rank ``r``)
turn the likelihood into independent scalar observations of the coordinates
``xbar = V^T x``:

.. math:: \bar y_i = \bar x_i + \rho_i \epsilon_i,\quad
          \bar y_i = (U^T \Gamma^{-1/2} y)_i / s_i,\quad \rho_i = 1 / s_i,\quad i < r,

and ``p(y | x) = C prod_i N(ybar_i; xbar_i, rho_i^2)`` with a constant ``C`` (kept, so the
log-evidence is that of ``y``).

Feynman-Kac model.  The diffusion model defines a backward chain ``x_{k+1} ~ N(mu_k(x_k),
v_k I)`` (:func:`~diffinv.solvers.kernels.reverse_kernel` with the denoiser's estimate),
started at ``N(0, sigma_0^2 I)`` (potential ``g_0 = 1``).  The potentials are Gaussian and
linear in the observed coordinates,

.. math:: g_k(x) = \prod_{i<r} N(\bar y_i;\ \alpha_{k,i} \bar x_i + \beta_{k,i},\ c_{k,i}),

and equal the exact likelihood at ``sigma = 0`` (``alpha = 1, beta = 0, c = rho^2``), so the
weighted particles target ``p_model(x_0) p(y | x_0)`` exactly as the particle count grows,
whatever the intermediate potentials.  ``potential="flat"`` uses ``alpha = 1, beta = 0,
c = rho^2 + sigma_k^2`` (``p(ybar | x_k)`` under a flat prior); ``potential="adaptive"``
uses ``p(ybar | x_k)`` under a per-coordinate Gaussian prior ``N(m_i, lam_i)``
fitted at each step to the particles' denoised estimates (:func:`local_gaussian_fit`):
``alpha = lam / (lam + sigma^2)``, ``beta = (1 - alpha) m``, ``c = rho^2 + alpha sigma^2``.
Its parameters depend on the particle population at the previous step only (standard
adaptive SMC).  It keeps the weights far more even when the likelihood is broad compared
with the prior.  ``potential="local"`` gives every particle its own local Gaussian model,
from the denoiser's Jacobian in the observed directions (Tweedie: ``dD/dx =
Cov(x_0 | x) / sigma^2``; :func:`jacobian_diagonal`) and its own denoised estimate; the
potential of a particle then depends on its parent, which is still a valid Feynman-Kac
model (the weights telescope in the same way).  It follows multimodal priors better (the
mixture benchmark) at the price of backward passes through the denoiser, and is what
``smc`` uses by default.

Because ``g_{k+1}`` is Gaussian and linear in ``x_{k+1}`` and the kernel covariance is
isotropic (diagonal in any orthonormal basis), the locally optimal proposal
``q(x_{k+1} | x_k) \propto N(x_{k+1}; mu_k, v_k) g_{k+1}(x_{k+1})`` is Gaussian in closed
form (coordinate-wise in ``xbar``) and the incremental weight
``N(ybar; alpha mubar_k + beta, c + alpha^2 v_k) / g_k(x_k)`` depends on ``x_k`` only: the
scheme is the fully adapted auxiliary particle filter (weight, resample, then move).  One
denoiser call per particle and step; the last step to ``sigma = 0`` is deterministic
(``x_0 = D(x, sigma_min)``) and only reweights.

Accuracy.  On the MCGdiff Gaussian-mixture problems the error of one run is dominated by the
noise of the mode weights: the Gaussian potentials are poor approximations of ``p(y | x_sigma)``
where the modes separate, the weights become uneven there and resampling leaves correlated
siblings.  The discretised chain itself is slightly off the prior: the isotropic kernels miss
the term ``(1 - s'^2/s^2)^2 Var(x_0 | x_s)``, which is large where the modes separate, and the
likelihood can amplify that bias.  ``kernel="tweedie"``
(:mod:`diffinv.solvers.smc.mcgdiff_tweedie`) adds it with the denoiser's full Jacobian,
together with per-particle potentials from the same Jacobian, and is what ``smc`` uses by
default where the Jacobian is cheap.  The noise of the mode weights of one run is lowered
below that of an exact (iid) sample of the same size by the ``smc`` defaults for this method,
Hilbert-ordered resampling and randomised quasi-Monte Carlo moves (SQMC,
:mod:`diffinv.solvers.smc.sqmc`).  Use ``n_runs`` (several independent runs batched
together) to see the run-to-run spread.  Measured errors and costs: ``benchmarks/README.md``
("Solver accuracy"), reproduced by ``benchmarks/exactness.py``.  The steps needed grow with
the number of observed coordinates: the isotropic kernel's per-coordinate mismatch adds up
in the weights, and with too few steps the particles descend from a few ancestors (measured
against an exact posterior at 32-128 px: ``benchmarks/smc_white_fourier.py``).

Operators.  Diagonal (mask, inpainting) and circulant (masked Fourier, periodic blur)
operators are recognised through the operator itself and factorised without a matrix, with
an implicit basis (a permutation, or the real Fourier basis applied by FFTs;
:mod:`.bases`), at any size.  The others need the operator's dense matrix
(:class:`~diffinv.solvers.smc.svd_likelihood.SVDLikelihood`), so their set-up is refused,
with its estimated memory, where it does not fit (then use ``method="tds"``): with fewer
data rows than unknowns (sparse-view CT) an economy factorisation keeps only the ``r``
observed directions ``V_r``, the unobserved complement being moved by the projector
``I - V_r V_r^T`` with the same law as with a full basis; otherwise a dense SVD (or, when
LAPACK's SVD fails to converge, the symmetric eigendecomposition of the normal matrix;
:mod:`.factorisation`).  The diagnostics
report which (``factorisation``) and the set-up time (``setup_seconds``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...operators.problem import InverseProblem
from ..context import Denoiser, RunContext
from ..kernels import reverse_kernel
from ..registry import SolverOutput, check_state
from ..utils import initial_noise, progress_bar
from .particles import (
    ParticleWeights,
    RunWeights,
    denoise,
    denoiser_batches,
    gather,
    log_normal,
)
from .sqmc import child_generator, move_normals
from .svd_likelihood import SVDLikelihood

__all__ = ["POTENTIALS", "GaussianPotential", "SVDLikelihood", "local_gaussian_fit",
           "fit_per_run", "run_mcgdiff"]

POTENTIALS = ("adaptive", "local", "flat")
EXACT_DIAGONAL_MAX = 8  # observed coordinates up to which the Jacobian diagonal is exact

def local_gaussian_fit(
    xbar: torch.Tensor, x0bar: torch.Tensor, w: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Fit, per coordinate, the Gaussian prior ``N(m, lam)`` whose denoiser matches the data.

    A Gaussian prior has ``D(x, sigma) = alpha x + (1 - alpha) m`` with
    ``alpha = lam / (lam + sigma^2)``; ``alpha`` and the intercept are fitted by weighted least
    squares of the denoised coordinates ``x0bar`` ``(N, r)`` on ``xbar`` ``(N, r)`` over the
    particles (weights ``w`` ``(N,)``).  ``alpha`` is clamped to ``[1e-6, 1]``; ``alpha = 1``
    gives ``lam = inf`` (no prior information).

    Returns
    -------
    lam, m : torch.Tensor
        ``(r,)`` float64 local prior variances (may be ``inf``) and means.
    """
    w = w.to(torch.float64)[:, None]
    mx, m0 = (w * xbar).sum(0), (w * x0bar).sum(0)
    dx = xbar - mx
    var = (w * dx**2).sum(0)
    cov = (w * dx * (x0bar - m0)).sum(0)
    alpha = torch.where(var > 0, cov / var.clamp(min=1e-300), torch.ones_like(var))
    alpha = alpha.clamp(1e-6, 1.0)
    inf = torch.full_like(alpha, math.inf)
    lam = torch.where(alpha < 1.0, sigma**2 * alpha / (1.0 - alpha), inf)
    m = torch.where(alpha < 1.0, (m0 - alpha * mx) / (1.0 - alpha), torch.zeros_like(alpha))
    return lam, m


def fit_per_run(
    xbar: torch.Tensor, x0bar: torch.Tensor, weights: ParticleWeights | RunWeights, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`local_gaussian_fit` on each run's particles separately (runs stay independent).

    One run: ``(r,)`` parameters shared by the particles; several: ``(N, r)`` per particle.
    """
    ws = weights.run_weights
    if len(ws) == 1:
        return local_gaussian_fit(xbar, x0bar, ws[0], sigma)
    n = ws[0].numel()
    fits = [local_gaussian_fit(xbar[k * n:(k + 1) * n], x0bar[k * n:(k + 1) * n], w, sigma)
            for k, w in enumerate(ws)]
    lam = torch.stack([f[0] for f in fits]).repeat_interleave(n, dim=0)
    m = torch.stack([f[1] for f in fits]).repeat_interleave(n, dim=0)
    return lam, m


def jacobian_diagonal(
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma: float,
    coords: Callable[[torch.Tensor], torch.Tensor],
    r: int,
    max_batch: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Denoise and return ``diag(V_r^T (dD/dx) V_r)`` per particle.

    By Tweedie, ``dD/dx = Cov(x_0 | x) / sigma^2``, so the diagonal is each particle's local
    shrinkage ``alpha``.  ``coords`` maps float64 images ``(b, n)`` to their ``r`` observed
    coordinates ``V_r^T x`` ``(b, r)`` (differentiable).  Exact (one backward pass per observed
    coordinate) for at most :data:`EXACT_DIAGONAL_MAX` coordinates, else a one-probe Rademacher
    estimate ``z_i (V_r^T J V_r z)_i``.

    Returns
    -------
    x0 : torch.Tensor
        Detached denoised estimates, shape of ``x``.
    diag : torch.Tensor
        ``(N, r)`` float64.
    """
    outs, diags = [], []
    for xc, sig in denoiser_batches(x, sigma, max_batch):
        b = xc.shape[0]
        with torch.enable_grad():
            xg = xc.requires_grad_(True)
            x0 = prior(xg, sig)
            x0bar = coords(x0.reshape(b, -1).to(torch.float64))
            if r <= EXACT_DIAGONAL_MAX:
                cols = []
                for i in range(r):
                    (g,) = torch.autograd.grad(x0bar[:, i].sum(), xg, retain_graph=i < r - 1)
                    cols.append(coords(g.reshape(b, -1).to(torch.float64))[:, i])
                d = torch.stack(cols, dim=1)
            else:
                z = torch.randint(0, 2, (b, r), device=x0bar.device, generator=generator)
                z = (2 * z - 1).to(torch.float64)
                (g,) = torch.autograd.grad((x0bar * z).sum(), xg)
                d = z * coords(g.reshape(b, -1).to(torch.float64))
        outs.append(x0.detach())
        diags.append(d.detach())
    return torch.cat(outs), torch.cat(diags)


def local_gaussian_from_jacobian(
    xbar: torch.Tensor, x0bar: torch.Tensor, diag: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-particle local Gaussian prior ``N(m, lam)`` from the Jacobian diagonal.

    ``alpha = diag`` clamped to ``[1e-6, 1]``; ``lam = sigma^2 alpha / (1 - alpha)`` (``inf``
    when ``alpha = 1``) and ``m = (x0bar - alpha xbar) / (1 - alpha)``, all ``(N, r)``.
    """
    alpha = diag.clamp(1e-6, 1.0)
    inf = torch.full_like(alpha, math.inf)
    lam = torch.where(alpha < 1.0, sigma**2 * alpha / (1.0 - alpha), inf)
    m = torch.where(alpha < 1.0, (x0bar - alpha * xbar) / (1.0 - alpha), torch.zeros_like(alpha))
    return lam, m


@dataclass
class GaussianPotential:
    r"""``g(x) = prod_i N(ybar_i; alpha_i xbar_i + beta_i, c_i)`` on the observed coordinates."""

    ybar: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor
    c: torch.Tensor

    @classmethod
    def at(cls, lik: SVDLikelihood, sigma: float, lam: torch.Tensor | None,
           m: torch.Tensor | None) -> GaussianPotential:
        r"""The potential at noise level ``sigma`` for a local Gaussian prior ``N(m, lam)``.

        ``p(ybar | x_sigma)`` under that prior: ``alpha = lam / (lam + sigma^2)``,
        ``beta = (1 - alpha) m``, ``c = rho^2 + alpha sigma^2``.  ``lam = None`` (or inf) gives
        the flat-prior potential ``N(ybar; xbar, rho^2 + sigma^2)``.  At ``sigma = 0`` every
        choice is the exact likelihood.
        """
        ones = torch.ones_like(lik.rho2)
        if lam is None or sigma == 0.0:
            return cls(lik.ybar, ones, torch.zeros_like(ones), lik.rho2 + sigma**2)
        finite = torch.isfinite(lam)
        lam_f = torch.where(finite, lam, ones)
        alpha = torch.where(finite, lam_f / (lam_f + sigma**2), ones)
        beta = torch.where(finite, (1.0 - alpha) * m, torch.zeros_like(ones))
        return cls(lik.ybar, alpha, beta, lik.rho2 + alpha * sigma**2)

    def gather(self, idx: torch.Tensor | None) -> GaussianPotential:
        """Reindex per-particle parameters ``(N, r)`` by ancestor indices (shared ones kept)."""
        if idx is None or self.alpha.ndim < 2:
            return self
        return GaussianPotential(self.ybar, self.alpha[idx], self.beta[idx], self.c[idx])

    def log_value(self, xbar: torch.Tensor) -> torch.Tensor:
        """``log g`` at particles with coordinates ``xbar`` ``(N, n)``; ``(N,)`` float64."""
        r = self.ybar.numel()
        return log_normal(self.ybar, self.alpha * xbar[:, :r] + self.beta, self.c)

    def log_predictive(self, mean_bar: torch.Tensor, var: float) -> torch.Tensor:
        """``log int N(x'; mean, var I) g(x') dx'`` per particle, ``(N,)`` float64."""
        r = self.ybar.numel()
        pred = self.alpha * mean_bar[:, :r] + self.beta
        return log_normal(self.ybar, pred, self.c + self.alpha**2 * var)

    def propose(self, mean_bar: torch.Tensor, var: float, z: torch.Tensor) -> torch.Tensor:
        """Draw ``xbar' ~ N(mean_bar, var) g(xbar')`` (normalised) from standard normals ``z``."""
        r = self.ybar.numel()
        out = mean_bar + math.sqrt(var) * z
        prec = 1.0 / var + self.alpha**2 / self.c
        mu = (mean_bar[:, :r] / var + self.alpha * (self.ybar - self.beta) / self.c) / prec
        out[:, :r] = mu + prec.rsqrt() * z[:, :r]
        return out


def run_mcgdiff(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    weights: ParticleWeights | RunWeights,
    max_batch: int | None,
    kernel: str = "midpoint",
    potential: str = "adaptive",
    noise: str = "pseudo",
    factorisation: str = "auto",
) -> SolverOutput:
    """Run the operator-exact SMC sampler (see the module docstring).

    ``potential`` selects the intermediate potentials: ``"adaptive"`` (a local Gaussian model
    fitted to the particles at each step) or ``"flat"`` (``rho^2 + sigma^2`` variances).
    ``noise``: ``pseudo`` (independent normals) or ``rqmc`` (scrambled Sobol points in the
    Hilbert order of the particles, :func:`~diffinv.solvers.smc.sqmc.move_normals`); with an
    economy factorisation they are the normals of the observed coordinates, and the
    complement's are independent normals (:meth:`SVDLikelihood.image`).  ``factorisation``:
    :func:`~diffinv.solvers.smc.factorisation.factorise`'s ``kind``.

    Returns
    -------
    SolverOutput
        ``samples`` ``(n_samples, *image_shape)`` particles, ``weights`` ``(n_samples,)``
        float64 normalised, ``nfe = steps`` and the particle diagnostics of ``weights``.
    """
    sigmas, n_samples, image_shape = ctx.sigmas, ctx.n_samples, ctx.image_shape
    dtype, generator, callback = ctx.dtype, ctx.generator, ctx.callback
    if potential not in POTENTIALS:
        raise ValueError(f"potential: expected one of {list(POTENTIALS)}, got {potential!r}")
    device = problem.y.device
    lik = SVDLikelihood.on_device(problem, image_shape, factorisation)
    r = lik.rank
    steps = len(sigmas) - 1

    # g_0 = 1: the initial particles are the model's N(0, s0^2 I), equally weighted
    s0 = float(sigmas[0])
    x = initial_noise(n_samples, image_shape, s0, dtype, device, generator)
    complement = child_generator(generator)  # the economy complement's noise (both paths)
    current: GaussianPotential | None = None
    for i in progress_bar(range(steps), ctx.progress, "smc-mcgdiff"):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        if potential == "local" and s_next > 0.0:
            x0, diag = jacobian_diagonal(prior, x, s, lambda z: lik.basis.coords(z, r), r,
                                         max_batch, generator)
        else:
            x0, _, _ = denoise(prior, x, s, max_batch)
        check_state(x0, i, "SMC (mcgdiff) denoised estimate")
        mean, var = reverse_kernel(x.to(torch.float64), x0.to(torch.float64), s, s_next,
                                   kernel)
        xbar, mean_bar = lik.coords(x), lik.coords(mean)
        if potential == "adaptive":
            lam, m = fit_per_run(xbar[:, :r], lik.coords(x0, r), weights, s)
        elif potential == "local" and s_next > 0.0:
            lam, m = local_gaussian_from_jacobian(xbar[:, :r], lik.coords(x0, r), diag, s)
        else:
            lam, m = None, None
        nxt = GaussianPotential.at(lik, s_next, lam, m)
        log_inc = nxt.log_predictive(mean_bar, var)
        if current is not None:
            log_inc = log_inc - current.log_value(xbar)
        weights.reweight(log_inc, i)
        if var > 0.0:
            # the states the ordered resampling and the RQMC noise sort: the coordinates, or
            # (economy) the images, the same points up to a rotation
            states = xbar if lik.complete else x.reshape(xbar.shape[0], -1).to(torch.float64)
            idx = weights.maybe_resample(i, states)
            mean_bar, parents, mean = gather(idx, mean_bar, states, mean)
            nxt = nxt.gather(idx)
            # n normals as with a full basis (the economy path uses the first r of them)
            (z,) = move_normals(noise, parents, (states.shape[1],), weights.n_runs, generator)
            xbar_new = nxt.propose(mean_bar, var, z[:, :mean_bar.shape[1]])
            x = lik.image(xbar_new, mean.reshape(xbar_new.shape[0], -1), mean_bar, var,
                          complement).to(dtype).reshape(x.shape)
        else:  # the last step to sigma = 0 is deterministic: x0 = D(x, sigma_min)
            x = mean.to(dtype)
        current = nxt
        check_state(x, i, "SMC (mcgdiff) state")
        if callback is not None:
            callback({"step": i, "sigma": s, "x": x, "x0_hat": x0,
                      "ess": weights.ess_history[-1]})
    weights.add_log_evidence(lik.log_const)
    diagnostics = {"method": "mcgdiff", "rank": r, **lik.setup_diagnostics(),
                   **weights.diagnostics()}
    return SolverOutput(samples=x.detach(), nfe=steps, weights=weights.weights,
                        diagnostics=diagnostics)
