r"""Backward kernel and potentials with the full Tweedie covariance (the ``tweedie`` kernel).

The VE backward transition given ``x_0`` is Gaussian,
``x_{s'} | x_s, x_0 ~ N(x_0 + a (x_s - x_0), s'^2 (1 - a) I)`` with ``a = s'^2 / s^2``.
Averaging over ``x_0 | x_s`` and keeping the first two moments gives the kernel

.. math:: \mu = D + a (x_s - D),\qquad
          C = s'^2 (1 - a) I + (1 - a)^2\,\mathrm{Cov}(x_0 | x_s),\qquad
          \mathrm{Cov}(x_0 | x_s) = s^2\, \partial D / \partial x_s

(Tweedie's second-order identity; the moment-matched kernel of Bao et al., ICML 2022,
"Estimating the optimal covariance with imperfect mean in diffusion probabilistic models",
with the exact Jacobian in place of a learned covariance).  For a Gaussian prior it is the
exact transition, so the chain's output is the prior itself at any number of steps; for
multimodal priors it keeps the spread between modes that the isotropic kernels
(:func:`~diffinv.solvers.kernels.reverse_kernel`) lose, which is what biases their mode
weights (:mod:`diffinv.solvers.smc.mcgdiff`).  The Jacobian costs one backward pass through the
denoiser per unknown, so the kernel is for problems of at most :data:`MAX_TWEEDIE_DIM`
unknowns.

The same Jacobian gives each particle a local Gaussian model of the prior,
``x_0 ~ N(m, Lam)`` with ``dD/dx = Lam (Lam + s^2 I)^{-1}``, and hence the potential
``g(x_{s'}) = N(ybar; P x_{s'} + beta, Gamma)`` that is ``p(ybar | x_{s'})`` under that model
(:meth:`MatrixPotential.local`, the Tweedie-moment likelihood of Boys et al. 2023, "Tweedie
moment projected diffusions for inverse problems", moved from ``s`` to ``s'``).  With both,
an SMC run on a Gaussian prior is perfectly adapted: every incremental weight is the same.

Implementation.  With ``a = s'^2 / s^2`` the kernel covariance is ``(1 - a) s^2 M`` with
``M = a I + (1 - a) J``, and the local model's ``dE[x_0 | x'] / dx' = J M^{-1}``: one
Cholesky factor of ``M`` per particle serves both, and proposals are drawn by
perturb-then-correct, so no ``n x n`` eigen-decomposition is needed.  A Jacobian shared by
every particle (a Gaussian prior's, one matrix expanded over the batch) stays one matrix
throughout (:mod:`diffinv.solvers.smc.shared_batch`): one factorisation per step.  Particles are the
flattened images in float64; the likelihood enters through the observed right singular
vectors ``V_r`` of :class:`~diffinv.solvers.smc.mcgdiff.SVDLikelihood`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import shared_batch as sb
from .particles import denoiser_batches

__all__ = ["MAX_TWEEDIE_DIM", "MatrixPotential", "TweedieKernel", "denoiser_jacobian",
           "tweedie_kernel", "Prediction"]

MAX_TWEEDIE_DIM = 1024  # largest number of unknowns for which the full Jacobian is formed


def denoiser_jacobian(
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma: float,
    max_batch: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoise ``x`` ``(N, *shape)`` and return the Jacobian of the denoiser per particle.

    A prior with a ``denoiser_jacobian(x, sigma) -> (x0, jac)`` method (the analytic priors:
    :class:`~diffinv.priors.GaussianPrior`, :class:`~diffinv.priors.GaussianMixturePrior`)
    supplies it exactly; otherwise one backward pass per unknown (``n = prod(shape)``), on
    chunks of ``max_batch`` particles (the denoiser must act on each batch element
    independently).

    Returns
    -------
    x0 : torch.Tensor
        Detached denoised estimates, shape of ``x``.
    jac : torch.Tensor
        ``(N, n, n)`` float64, ``jac[k, i, j] = d D(x_k)_i / d x_{k, j}``; symmetric (the
        exact Jacobian is ``Cov(x_0 | x) / sigma^2``; a learned one is symmetrised).
    """
    n = x[0].numel()
    if n > MAX_TWEEDIE_DIM:
        raise ValueError(
            f"kernel: 'tweedie' forms the denoiser's full Jacobian and supports at most "
            f"{MAX_TWEEDIE_DIM} unknowns, got {n}; use kernel='midpoint'"
        )
    analytic = getattr(prior, "denoiser_jacobian", None)
    outs, jacs = [], []
    for xc, sig in denoiser_batches(x, sigma, max_batch):
        b = xc.shape[0]
        if callable(analytic):
            x0, jac = analytic(xc, sig)
            outs.append(x0.detach())
            jacs.append(sb.to_float64(jac.detach()))
            continue
        with torch.enable_grad():
            xg = xc.requires_grad_(True)
            flat = prior(xg, sig).reshape(b, n)
            rows = []
            for i in range(n):
                (g,) = torch.autograd.grad(flat[:, i].sum(), xg, retain_graph=i < n - 1)
                rows.append(g.reshape(b, n).to(torch.float64))
        outs.append(flat.detach().reshape(xc.shape))
        jac = torch.stack(rows, dim=1)
        jacs.append(0.5 * (jac + jac.transpose(-1, -2)))  # a learned denoiser's is nearly so
    if len(jacs) == 1:  # (no copy of an expanded, batch-shared Jacobian)
        return outs[0], jacs[0]
    return torch.cat(outs), torch.cat(jacs)


def tweedie_kernel(
    x: torch.Tensor, x0: torch.Tensor, jac: torch.Tensor | None, sigma: float,
    sigma_next: float,
) -> TweedieKernel:
    """The Tweedie kernel from ``sigma`` to ``sigma_next`` (module docstring).

    Parameters
    ----------
    x, x0 : torch.Tensor
        ``(N, n)`` float64 flattened particles and their denoised estimates.
    jac : torch.Tensor or None
        ``(N, n, n)`` float64 symmetric Jacobians of the denoiser at ``x``
        (:func:`denoiser_jacobian`; ``None`` only when ``sigma_next = 0``).
    sigma, sigma_next : float
        Noise levels, ``sigma > sigma_next >= 0``.

    Notes
    -----
    With ``a = s'^2 / s^2`` the covariance is ``C = (1 - a) s^2 M``, ``M = a I + (1 - a) J``:
    one Cholesky factor of ``M`` per particle serves the kernel and the local potential.
    ``M`` is positive definite when ``J`` is positive semi-definite (an exact denoiser); for
    particles where it is not (a learned denoiser), ``J``'s negative eigenvalues are set to
    zero first.  ``sigma_next = 0`` is the deterministic step ``x0`` (as for the other
    kernels).
    """
    if sigma_next == 0.0:
        return TweedieKernel(mean=x0, scale2=0.0, jac=None, chol=None)
    a = sigma_next**2 / sigma**2
    if sb.is_shared(jac):  # one Jacobian for every particle (a Gaussian prior): factor once
        one, chol = _factor(jac[:1], a)
        jac, chol = one.expand_as(jac), chol.expand_as(jac)
    else:
        jac, chol = _factor(jac, a)
    return TweedieKernel(mean=x0 + a * (x - x0), scale2=(1.0 - a) * sigma**2, jac=jac,
                         chol=chol)


def _factor(jac: torch.Tensor, a: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cholesky factors of ``M = a I + (1 - a) J`` per item, with ``J``'s negative
    eigenvalues set to zero where ``M`` is not positive definite; returns ``(J, L)``."""
    m = (1.0 - a) * jac
    m.diagonal(dim1=-2, dim2=-1).add_(a)
    chol, info = torch.linalg.cholesky_ex(m)
    bad = info != 0
    if bool(bad.any()):
        eye = torch.eye(jac.shape[-1], dtype=jac.dtype, device=jac.device)
        j, u = torch.linalg.eigh(jac[bad])
        fixed = (u * j.clamp(min=0.0)[:, None, :]) @ u.transpose(-1, -2)
        jac = jac.clone()
        jac[bad] = 0.5 * (fixed + fixed.transpose(-1, -2))
        chol = chol.clone()
        chol[bad] = torch.linalg.cholesky(a * eye + (1.0 - a) * jac[bad])
    return jac, chol


@dataclass
class TweedieKernel:
    r"""``N(mean, scale2 * L L^T)`` per particle; ``L`` is ``chol`` ``(N, n, n)`` (``None``
    with ``scale2 = 0``: the deterministic last step).  ``jac`` is the symmetrised Jacobian
    the factor was built from."""

    mean: torch.Tensor
    scale2: float
    jac: torch.Tensor | None
    chol: torch.Tensor | None

    def gather(self, idx: torch.Tensor | None) -> TweedieKernel:
        """Reindex by ancestor indices."""
        if idx is None:
            return self
        if self.chol is None:
            return TweedieKernel(self.mean[idx], self.scale2, None, None)
        return TweedieKernel(self.mean[idx], self.scale2, sb.take(self.jac, idx),
                             sb.take(self.chol, idx))

    def cov_times(self, m: torch.Tensor) -> torch.Tensor:
        """``C m`` for ``m`` ``(N, n, k)``."""
        if self.chol is None:
            return torch.zeros_like(m)
        return self.scale2 * sb.matmul(self.chol, sb.matmul(self.chol.transpose(-1, -2), m))

    def draw(self, z: torch.Tensor) -> torch.Tensor:
        """``mean + sqrt(scale2) L z`` for standard normals ``z`` ``(N, n)``."""
        if self.chol is None:
            return self.mean
        return self.mean + math.sqrt(self.scale2) * sb.matvec(self.chol, z)


def _log_normal_full(innov: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """``log N(innov; 0, cov)`` for ``innov`` ``(N, r)`` and ``cov`` ``(N, r, r)``."""
    chol = sb.cholesky(cov)
    white = sb.tril_solve_vec(chol, innov)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (white**2).sum(-1) - 0.5 * logdet - 0.5 * innov.shape[-1] * math.log(2 * math.pi)


@dataclass
class MatrixPotential:
    r"""``g(x) = N(ybar; P x + beta, Gamma)`` on flattened particles ``x`` ``(N, n)``, with
    per-particle ``P`` ``(N, r, n)``, ``beta`` ``(N, r)``, ``Gamma`` ``(N, r, r)`` (float64)."""

    ybar: torch.Tensor
    p: torch.Tensor
    beta: torch.Tensor
    gamma: torch.Tensor

    @classmethod
    def from_diagonal(cls, ybar: torch.Tensor, v_obs: torch.Tensor, alpha: torch.Tensor,
                      beta: torch.Tensor, c: torch.Tensor, n_part: int) -> MatrixPotential:
        """The coordinate-wise potential ``prod_i N(ybar_i; alpha_i (V_r^T x)_i + beta_i, c_i)``
        (:class:`~diffinv.solvers.smc.mcgdiff.GaussianPotential`); ``v_obs`` is ``V_r`` ``(n, r)``;
        parameters ``(r,)`` (shared) or ``(N, r)``."""
        shape = (n_part, ybar.numel())
        alpha, beta, c = (t.expand(shape) for t in (alpha, beta, c))
        p = alpha[..., None] * v_obs.T[None]
        return cls(ybar, p, beta.clone(), torch.diag_embed(c))

    @classmethod
    def local(cls, ybar: torch.Tensor, rho2: torch.Tensor, v_obs: torch.Tensor,
              x0: torch.Tensor, kernel: TweedieKernel, sigma_next: float) -> MatrixPotential:
        r"""``p(ybar | x_{s'})`` under each particle's local Gaussian model of the prior.

        The local model ``x_0 ~ N(m, Lam)`` has ``J = Lam (Lam + s^2 I)^{-1}`` at level ``s``;
        at level ``s'`` it gives (``m`` eliminated, ``mu`` the kernel mean)

        .. math:: E[x_0 | x'] = D + J' (x' - \mu),\qquad \mathrm{Cov}(x_0 | x') = s'^2 J',
                  \qquad J' = J\,(a I + (1 - a) J)^{-1} = J M^{-1},

        so ``P = V_r^T J'``, ``beta = V_r^T (D - J' mu)`` and
        ``Gamma = diag(rho^2) + s'^2 V_r^T J' V_r``.  ``s' = 0`` (or a deterministic kernel)
        gives the exact likelihood ``N(ybar; V_r^T x, rho^2)``.
        """
        n_part = x0.shape[0]
        if sigma_next == 0.0 or kernel.chol is None:
            ones = torch.ones_like(rho2)
            return cls.from_diagonal(ybar, v_obs, ones, torch.zeros_like(ones), rho2, n_part)
        jv = sb.matmul(kernel.jac, v_obs.expand(n_part, -1, -1))  # (N, n, r)
        jpv = sb.cholesky_solve(jv, kernel.chol)  # J' V_r = M^{-1} J V_r
        p = jpv.transpose(-1, -2)
        beta = x0 @ v_obs - sb.matvec(p, kernel.mean)
        vjv = sb.matmul(v_obs.T.expand(n_part, -1, -1), jpv)
        gamma = sb.pointwise(lambda m: torch.diag(rho2) + sigma_next**2 * m, vjv)
        return cls(ybar, p, beta, sb.symmetrize(gamma))

    def gather(self, idx: torch.Tensor | None) -> MatrixPotential:
        """Reindex the per-particle parameters by ancestor indices."""
        if idx is None:
            return self
        return MatrixPotential(self.ybar, sb.take(self.p, idx), self.beta[idx],
                               sb.take(self.gamma, idx))

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        return sb.matvec(self.p, x) + self.beta

    def log_value(self, x: torch.Tensor) -> torch.Tensor:
        """``log g`` at flattened particles ``x`` ``(N, n)``; ``(N,)`` float64."""
        return _log_normal_full(self.ybar - self._mean(x), self.gamma)

    def predict(self, kernel: TweedieKernel) -> Prediction:
        """The kernel pushed through the potential: ``C P^T``, ``S = P C P^T + Gamma`` and
        ``log int N(x'; mean, C) g(x') dx'`` per particle (the incremental weight's
        numerator), computed once for the weights and the proposal."""
        cpt = kernel.cov_times(self.p.transpose(-1, -2))  # (N, n, r)
        pcp = sb.matmul(self.p, cpt)
        s_chol = sb.cholesky(sb.symmetrize(sb.pointwise(torch.add, pcp, self.gamma)))
        innov = self.ybar - self._mean(kernel.mean)
        white = sb.tril_solve_vec(s_chol, innov)
        logdet = 2.0 * torch.log(torch.diagonal(s_chol, dim1=-2, dim2=-1)).sum(-1)
        log_pred = (-0.5 * (white**2).sum(-1) - 0.5 * logdet
                    - 0.5 * innov.shape[-1] * math.log(2 * math.pi))
        return Prediction(cpt=cpt, s_chol=s_chol, log_predictive=log_pred)

    def propose(self, kernel: TweedieKernel, pred: Prediction, z: torch.Tensor,
                e: torch.Tensor) -> torch.Tensor:
        """Draw ``x' ~ N(mean, C) g(x')`` (normalised) from standard normals ``z`` ``(N, n)``
        and ``e`` ``(N, r)``; ``pred`` is :meth:`predict` of the same kernel (both reindexed
        alike after resampling).

        Perturb-then-correct (Matheron's rule): ``x_p = mean + C^{1/2} z`` and
        ``y_p = P x_p + beta + Gamma^{1/2} e``, then ``x' = x_p + C P^T S^{-1} (ybar - y_p)``
        with ``S = P C P^T + Gamma``: an exact draw from the Gaussian posterior without
        factorising its covariance.
        """
        xp = kernel.draw(z)
        noise = sb.matvec(sb.cholesky(self.gamma), e)
        innov = (self.ybar - self._mean(xp) - noise)[..., None]
        return xp + sb.matvec(pred.cpt, sb.cholesky_solve(innov, pred.s_chol)[..., 0])


@dataclass
class Prediction:
    """:meth:`MatrixPotential.predict`: ``C P^T`` ``(N, n, r)``, the Cholesky factor of
    ``S`` ``(N, r, r)`` and the log predictive density ``(N,)``."""

    cpt: torch.Tensor
    s_chol: torch.Tensor
    log_predictive: torch.Tensor

    def gather(self, idx: torch.Tensor | None) -> Prediction:
        """Reindex by ancestor indices."""
        if idx is None:
            return self
        return Prediction(sb.take(self.cpt, idx), sb.take(self.s_chol, idx),
                          self.log_predictive[idx])
