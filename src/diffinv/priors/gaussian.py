"""Gaussian prior with an exact denoiser and exact linear-Gaussian posterior."""

from __future__ import annotations

import math

import torch

from ..operators.linear_gaussian import real_linear_system
from ..operators.problem import InverseProblem
from .base import sigma_per_item

__all__ = ["GaussianPrior", "as_event", "check_cov", "default_sigma_max", "gaussian_conditional"]


def default_sigma_max(means: torch.Tensor, eigvals: torch.Tensor) -> float:
    """A ``sigma_max`` large enough that ``p_sigma`` is close to ``N(0, sigma^2 I)``.

    Taken as 50 times the root-mean-square spread of the prior (mean offsets plus the largest
    variance), and at least 80 (the EDM default).
    """
    n = means.shape[-1]
    spread = math.sqrt(float((means**2).sum(-1).max()) / n + float(eigvals.max().clamp(min=0)))
    return max(80.0, 50.0 * spread)


def as_event(t: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t)
    if t.is_complex():
        raise ValueError(f"{name}: analytic priors are real; use RealToComplex for complex images")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or Inf")
    return t.to(torch.float64)


def check_cov(cov: torch.Tensor, n: int, name: str) -> torch.Tensor:
    cov = as_event(cov, name)
    if cov.shape[-2:] != (n, n):
        raise ValueError(
            f"{name}: expected shape ({n}, {n}) to match the mean, got {tuple(cov.shape)}"
        )
    if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-10 * float(cov.abs().max() + 1)):
        raise ValueError(f"{name}: expected a symmetric matrix")
    return 0.5 * (cov + cov.transpose(-1, -2))


class GaussianPrior:
    r"""Gaussian prior ``x0 ~ N(m, C)`` on real images of any shape.

    Its denoiser is exact:

    .. math:: D(x, \sigma) = m + C (C + \sigma^2 I)^{-1} (x - m)

    computed through the eigendecomposition of ``C`` so a batch of sigmas costs one matrix
    product.  Covariances may be singular (positive semi-definite).

    Parameters
    ----------
    mean : torch.Tensor
        Prior mean with the event shape, e.g. ``(n,)`` or ``(1, H, W)``.
    cov : torch.Tensor
        ``(n, n)`` symmetric positive semi-definite covariance of the flattened image.
    sigma_max : float, optional
        Largest noise level samplers should start from; see :func:`default_sigma_max`.
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, sigma_max: float | None = None):
        mean = as_event(mean, "mean")
        self.event_shape = tuple(mean.shape)
        n = mean.numel()
        self.mean = mean.reshape(-1)
        self.cov = check_cov(cov, n, "cov")
        evals, evecs = torch.linalg.eigh(self.cov)
        if float(evals.min()) < -1e-8 * float(evals.abs().max()):
            raise ValueError("cov: expected a positive semi-definite matrix")
        self.eigvals = evals.clamp(min=0.0)
        self.eigvecs = evecs
        self.sigma_min = 0.0
        self.sigma_max = (
            float(sigma_max)
            if sigma_max is not None
            else default_sigma_max(self.mean[None], self.eigvals)
        )

    @property
    def dim(self) -> int:
        """Number of real values in one image."""
        return self.mean.numel()

    def to(self, device: torch.device | str) -> GaussianPrior:
        """Move the prior's tensors to ``device`` (in place); returns self."""
        for name in ("mean", "cov", "eigvals", "eigvecs"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Exact posterior mean ``E[x0 | x0 + sigma eps = x]`` for a batch."""
        s = sigma_per_item(sigma, x)
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.dim:
            raise ValueError(
                f"x: expected images of shape {self.event_shape}, got {tuple(x.shape[1:])}"
            )
        u = self.eigvecs.to(flat.dtype)
        lam = self.eigvals.to(flat.dtype)
        m = self.mean.to(flat.dtype)
        z = (flat - m) @ u
        shrink = lam / (lam + s[:, None] ** 2).clamp(min=torch.finfo(flat.dtype).tiny)
        out = m + (shrink * z) @ u.T
        return out.reshape(x.shape)

    def denoiser_jacobian(
        self, x: torch.Tensor, sigma: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Denoiser and its exact Jacobian ``C (C + sigma^2 I)^{-1}``, ``(B, n, n)``.

        The same matrix for every item with the same ``sigma`` (the denoiser is affine);
        used by the ``tweedie`` SMC kernel in place of one backward pass per unknown.
        """
        s = sigma_per_item(sigma, x)
        u = self.eigvecs.to(x.dtype)
        lam = self.eigvals.to(x.dtype)
        s2 = (s**2).clamp(min=torch.finfo(x.dtype).tiny)
        if bool((s2 == s2[0]).all()):  # one matrix for the whole batch (a view, no copies)
            one = (u * (lam / (lam + s2[0]))[None, :]) @ u.T
            return self(x, s), (0.5 * (one + one.T)).expand(x.shape[0], -1, -1)
        jac = (u[None] * (lam[None] / (lam[None] + s2[:, None]))[:, None, :]) @ u.T[None]
        return self(x, s), 0.5 * (jac + jac.transpose(1, 2))

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Draw ``n`` independent images, shape ``(n, *event_shape)``."""
        z = torch.randn(
            n, self.dim, dtype=torch.float64, device=self.mean.device, generator=generator
        )
        x = self.mean + (z * self.eigvals.sqrt()) @ self.eigvecs.T
        return x.reshape(n, *self.event_shape).to(dtype)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density per item (requires a non-singular covariance)."""
        if float(self.eigvals.min()) <= 0:
            raise ValueError("cov: log_prob needs a positive definite covariance")
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        z = (flat - self.mean) @ self.eigvecs
        return (
            -0.5 * ((z**2) / self.eigvals).sum(-1)
            - 0.5 * torch.log(self.eigvals).sum()
            - (0.5 * self.dim * math.log(2 * math.pi))
        )

    def posterior(self, problem: InverseProblem) -> GaussianPrior:
        r"""Exact posterior ``p(x | y)`` for a linear operator with Gaussian noise.

        .. math::
            K = C A^T (A C A^T + \Gamma)^{-1},\quad
            m' = m + K (y - A m),\quad C' = C - K A C

        Returns a :class:`GaussianPrior` (so it can be sampled and used as a denoiser).
        """
        a, y, var = real_linear_system(problem, self.event_shape)
        a, y, var = a.to(self.mean.device), y.to(self.mean.device), var.to(self.mean.device)
        mean, cov, _ = gaussian_conditional(self.mean, self.cov, a, y, var)
        return GaussianPrior(mean.reshape(self.event_shape), cov, sigma_max=self.sigma_max)

    def __repr__(self) -> str:
        return f"GaussianPrior(event_shape={self.event_shape})"


def gaussian_conditional(
    mean: torch.Tensor, cov: torch.Tensor, a: torch.Tensor, y: torch.Tensor, var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Condition ``N(mean, cov)`` on ``y = a x + N(0, diag(var))``.

    Returns the posterior mean, the posterior covariance and the log evidence
    ``log N(y; a mean, a cov a^T + diag(var))``.
    """
    ac = a @ cov
    s = ac @ a.T + torch.diag(var)
    s = 0.5 * (s + s.T)
    chol = torch.linalg.cholesky(s)
    resid = y - a @ mean
    sol = torch.cholesky_solve(resid[:, None], chol)[:, 0]
    post_mean = mean + ac.T @ sol
    gain_t = torch.cholesky_solve(ac, chol)  # S^-1 A C
    post_cov = cov - ac.T @ gain_t
    post_cov = 0.5 * (post_cov + post_cov.T)
    log_evidence = (
        -0.5 * (resid * sol).sum()
        - torch.log(torch.diagonal(chol)).sum()
        - 0.5 * y.numel() * math.log(2 * math.pi)
    )
    return post_mean, post_cov, log_evidence
