"""Gaussian-mixture prior with an exact denoiser and exact linear-Gaussian posterior.

The reference on which every sampler is checked: for a linear operator with Gaussian noise
the posterior is again a Gaussian mixture (e.g. the MCGdiff benchmark, Cardoso et al. 2024).
"""

from __future__ import annotations

import math

import torch

from ..operators.linear_gaussian import real_linear_system
from ..operators.problem import InverseProblem
from .base import sigma_per_item
from .gaussian import as_event, check_cov, default_sigma_max, gaussian_conditional

__all__ = ["GaussianMixturePrior"]


class GaussianMixturePrior:
    r"""Mixture ``sum_k w_k N(m_k, C_k)`` on real images of any shape.

    Its denoiser is exact: with ``x = x0 + sigma eps``,

    .. math::
        D(x, \sigma) = \sum_k r_k(x)\,[m_k + C_k (C_k + \sigma^2 I)^{-1}(x - m_k)],\quad
        r_k \propto w_k\,\mathcal N(x; m_k, C_k + \sigma^2 I).

    Parameters
    ----------
    weights : torch.Tensor
        ``(K,)`` non-negative mixture weights (normalised internally).
    means : torch.Tensor
        ``(K, *event_shape)`` component means.
    covs : torch.Tensor
        ``(K, n, n)`` component covariances, or one shared ``(n, n)`` covariance (faster).
    sigma_max : float, optional
        Largest noise level samplers should start from.
    """

    def __init__(
        self,
        weights: torch.Tensor,
        means: torch.Tensor,
        covs: torch.Tensor,
        sigma_max: float | None = None,
    ):
        w = as_event(weights, "weights").reshape(-1)
        means = as_event(means, "means")
        if means.ndim < 2 or means.shape[0] != w.shape[0]:
            raise ValueError(
                f"means: expected shape (K, *event_shape) with K={w.shape[0]} components, "
                f"got {tuple(means.shape)}"
            )
        if bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError("weights: expected non-negative weights with a positive sum")
        self.weights = w / w.sum()
        self.event_shape = tuple(means.shape[1:])
        self.n_components = w.shape[0]
        n = math.prod(self.event_shape)
        self.means = means.reshape(self.n_components, n)
        covs = check_cov(covs, n, "covs")
        if covs.ndim == 3 and covs.shape[0] != self.n_components:
            raise ValueError(f"covs: expected {self.n_components} covariances, got {covs.shape[0]}")
        if covs.ndim not in (2, 3):
            raise ValueError("covs: expected shape (K, n, n) or (n, n)")
        self.shared_cov = covs.ndim == 2
        self.covs = covs
        evals, evecs = torch.linalg.eigh(covs)
        if float(evals.min()) < -1e-8 * float(evals.abs().max()):
            raise ValueError("covs: expected positive semi-definite matrices")
        self.eigvals = evals.clamp(min=0.0)
        self.eigvecs = evecs
        self.sigma_min = 0.0
        self.sigma_max = (
            float(sigma_max)
            if sigma_max is not None
            else default_sigma_max(self.means, self.eigvals)
        )

    @property
    def dim(self) -> int:
        """Number of real values in one image."""
        return self.means.shape[1]

    def to(self, device: torch.device | str) -> GaussianMixturePrior:
        """Move the prior's tensors to ``device`` (in place); returns self."""
        for name in ("weights", "means", "covs", "eigvals", "eigvecs"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def _log_resp(self, flat: torch.Tensor, s2: torch.Tensor):
        """Unnormalised log responsibilities ``(B, K)``, the eigen-coordinates ``z`` of
        ``x - m_k`` ``(B, K, n)``, the variances ``lam + s2`` (``(B, 1, n)`` shared, else
        ``(B, K, n)``) and ``lam`` in ``flat``'s dtype."""
        dt = flat.dtype
        lam = self.eigvals.to(dt)
        u = self.eigvecs.to(dt)
        m = self.means.to(dt)
        if self.shared_cov:
            z = (flat @ u)[:, None, :] - (m @ u)[None]  # (B, K, n)
            denom = lam[None, None, :] + s2[:, None, None]
        else:
            z = torch.einsum("bkn,knj->bkj", flat[:, None, :] - m[None], u)
            denom = lam[None] + s2[:, None, None]
        denom = denom.clamp(min=torch.finfo(dt).tiny)
        log_norm = -0.5 * (z**2 / denom).sum(-1) - 0.5 * torch.log(denom).sum(-1)
        return torch.log(self.weights.to(dt))[None] + log_norm, z, denom, lam

    def _component_stats(self, flat: torch.Tensor, s2: torch.Tensor):
        """Per-component log responsibilities and posterior means, (B, K) and (B, K, n)."""
        log_r, z, denom, lam = self._log_resp(flat, s2)
        u, m = self.eigvecs.to(flat.dtype), self.means.to(flat.dtype)
        shrunk = (lam / denom) * z  # coordinates of C (C + s2 I)^-1 (x - m)
        if self.shared_cov:
            comp_means = m[None] + shrunk @ u.T
        else:
            comp_means = m[None] + torch.einsum("bkj,knj->bkn", shrunk, u)
        return log_r, comp_means

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Exact posterior mean ``E[x0 | x0 + sigma eps = x]`` for a batch."""
        s = sigma_per_item(sigma, x)
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.dim:
            raise ValueError(
                f"x: expected images of shape {self.event_shape}, got {tuple(x.shape[1:])}"
            )
        if not self.shared_cov:
            log_r, comp_means = self._component_stats(flat, s**2)
            r = torch.softmax(log_r, dim=1)
            return (r[:, :, None] * comp_means).sum(1).reshape(x.shape)
        # shared covariance: the shrinkage is the same for every component, so
        # D = sum_k r_k m_k + U diag(lam / (lam + s^2)) sum_k r_k z_k (no (B, K, n, n) work)
        log_r, z, denom, lam = self._log_resp(flat, s**2)
        r = torch.softmax(log_r, dim=1)
        u, m = self.eigvecs.to(flat.dtype), self.means.to(flat.dtype)
        shrunk = (lam / denom[:, 0]) * torch.einsum("bk,bkn->bn", r, z)
        return (r @ m + shrunk @ u.T).reshape(x.shape)

    def denoiser_jacobian(
        self, x: torch.Tensor, sigma: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Denoiser and its exact Jacobian, ``(B, *event_shape)`` and ``(B, n, n)``.

        With per-component posterior means ``mu_k`` and shrinkage
        ``A_k = C_k (C_k + sigma^2 I)^{-1}``,

        .. math:: \frac{\partial D}{\partial x} = \sum_k r_k A_k
                  + \frac{1}{\sigma^2} \sum_k r_k (\mu_k - D)(\mu_k - D)^T
                  = \mathrm{Cov}(x_0 | x) / \sigma^2,

        symmetric positive semi-definite (used by the ``tweedie`` SMC kernel in place of
        one backward pass per unknown).  Needs ``sigma > 0``.
        """
        s = sigma_per_item(sigma, x)
        if bool((s <= 0).any()):
            raise ValueError("sigma: the denoiser's Jacobian needs positive noise levels")
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.dim:
            raise ValueError(
                f"x: expected images of shape {self.event_shape}, got {tuple(x.shape[1:])}"
            )
        s2 = s**2
        log_r, comp_means = self._component_stats(flat, s2)
        r = torch.softmax(log_r, dim=1)
        d = (r[:, :, None] * comp_means).sum(1)
        # (B, n, n) passes dominate the cost: scale the (B, K, n) factor, not its product
        dev = (comp_means - d[:, None, :]) * (r[:, :, None] / s2[:, None, None]).sqrt()
        lam, u = self.eigvals.to(flat.dtype), self.eigvecs.to(flat.dtype)
        if self.shared_cov:
            jac = torch.baddbmm(_shrinkage_matrices(u, lam, s2), dev.transpose(1, 2), dev)
        else:
            jac = dev.transpose(1, 2) @ dev
            for k in range(self.n_components):
                shrink = r[:, k:k + 1] * lam[k][None] / (lam[k][None] + s2[:, None])
                jac = torch.baddbmm(jac, u[k][None] * shrink[:, None, :], u[k].T.expand_as(jac))
        return d.reshape(x.shape), (jac + jac.transpose(1, 2)).mul_(0.5)

    def responsibilities(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Posterior component probabilities ``p(k | x0 + sigma eps = x)``, shape (B, K)."""
        s = sigma_per_item(sigma, x)
        log_r = self._log_resp(x.reshape(x.shape[0], -1), s**2)[0]
        return torch.softmax(log_r, dim=1)

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Draw ``n`` independent images, shape ``(n, *event_shape)``."""
        dev = self.means.device
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, dtype=torch.float64, device=dev, generator=generator)
        if self.shared_cov:
            noise = (z * self.eigvals.sqrt()) @ self.eigvecs.T
        else:
            noise = torch.einsum("bj,bnj->bn", z * self.eigvals[k].sqrt(), self.eigvecs[k])
        return (self.means[k] + noise).reshape(n, *self.event_shape).to(dtype)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density per item (requires non-singular covariances)."""
        if float(self.eigvals.min()) <= 0:
            raise ValueError("covs: log_prob needs positive definite covariances")
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        log_r = self._log_resp(
            flat, torch.zeros(flat.shape[0], dtype=torch.float64, device=flat.device)
        )[0]
        return torch.logsumexp(log_r, dim=1) - 0.5 * self.dim * math.log(2 * math.pi)

    def posterior(self, problem: InverseProblem) -> GaussianMixturePrior:
        """Exact posterior for a linear operator with Gaussian noise: a Gaussian mixture.

        Each component is conditioned on the data (see :func:`gaussian_conditional`), and its
        weight is multiplied by its evidence ``N(y; A m_k, A C_k A^T + Gamma)``.
        """
        a, y, var = real_linear_system(problem, self.event_shape)
        dev = self.means.device
        a, y, var = a.to(dev), y.to(dev), var.to(dev)
        post_means, post_covs, log_w = [], [], []
        for k in range(self.n_components):
            cov_k = self.covs if self.shared_cov else self.covs[k]
            m, c, log_ev = gaussian_conditional(self.means[k], cov_k, a, y, var)
            post_means.append(m)
            post_covs.append(c)
            log_w.append(torch.log(self.weights[k]) + log_ev)
        log_w = torch.stack(log_w)
        weights = torch.softmax(log_w, dim=0)
        means = torch.stack(post_means).reshape(self.n_components, *self.event_shape)
        covs = post_covs[0] if self.shared_cov else torch.stack(post_covs)
        return GaussianMixturePrior(weights, means, covs, sigma_max=self.sigma_max)

    def __repr__(self) -> str:
        return f"GaussianMixturePrior(K={self.n_components}, event_shape={self.event_shape})"


def _shrinkage_matrices(u: torch.Tensor, lam: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """``U diag(lam / (lam + s2_b)) U^T`` per item ``(B, n, n)``; formed once (and expanded)
    when every item has the same noise level, as in a sampler's batch."""
    if bool((s2 == s2[0]).all()):
        one = (u * (lam / (lam + s2[0]))[None, :]) @ u.T
        return one.expand(s2.shape[0], -1, -1)
    shrink = lam[None] / (lam[None] + s2[:, None])
    return (u[None] * shrink[:, None, :]) @ u.T[None]
