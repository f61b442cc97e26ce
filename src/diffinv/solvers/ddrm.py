r"""Denoising Diffusion Restoration Models, DDRM (Kawar, Elad, Ermon & Song, NeurIPS 2022,
arXiv:2201.11793).

DDRM works in the spectral basis of the forward operator.  The noise is whitened first
(``A_w = W^{1/2} A``, ``y_w = W^{1/2} y``, ``W = diag(1/s^2)``, so per-measurement sigmas are
allowed), then ``A_w = U S V^T`` and, in coordinates ``x_bar = V^T x``, each observed
component ``i`` (singular value ``s_i > 0``) has a noisy measurement
``y_bar_i = (U^T y_w)_i / s_i`` with standard deviation ``sigma_i = 1 / s_i``.  From level
``sigma`` to ``sigma'`` with ``x0_bar = V^T D(x, sigma)`` (eq. 7-8 of the paper, VE form):

* unobserved: ``x0_bar + sqrt(1 - eta^2) sigma' (x_bar - x0_bar) / sigma + eta sigma' eps``;
* observed, ``sigma' < sigma_i``: ``x0_bar + sqrt(1 - eta^2) sigma' (y_bar - x0_bar) / sigma_i
  + eta sigma' eps``;
* observed, ``sigma' >= sigma_i``: ``(1 - eta_b) x0_bar + eta_b y_bar
  + sqrt(sigma'^2 - eta_b^2 sigma_i^2) eps``.

An SVD is needed: the operator is turned into a dense real matrix (complex measurements as
stacked real and imaginary rows), so DDRM is limited to images of at most ``max_dim`` values.
DDRM is approximate (paper defaults ``eta = 0.85``, ``eta_b = 1``); see the tests for its
documented bias on Gaussian priors.
"""

from __future__ import annotations

import math

import torch

from ..operators.linear_gaussian import stack_real_rows
from ..operators.problem import InverseProblem
from ..validation import in_range, positive_int
from .batching import check_max_batch, run_chunked
from .context import Denoiser, RunContext
from .registry import SolverOutput, check_state, register_solver

__all__ = ["ddrm", "SpectralProblem"]


class SpectralProblem:
    """SVD view of a whitened linear-Gaussian problem.

    Attributes
    ----------
    vh : torch.Tensor
        ``(n, n)`` orthogonal matrix; rows are the right singular vectors (then a basis of
        the null space).
    y_bar : torch.Tensor
        ``(n,)`` spectral data (zero where unobserved).
    sigma_bar : torch.Tensor
        ``(n,)`` spectral noise standard deviations ``1 / s_i`` (``inf`` where unobserved).
    observed : torch.Tensor
        ``(n,)`` boolean mask of components with a non-zero singular value.
    """

    def __init__(self, problem, image_shape: tuple[int, ...], max_dim: int, rcond: float):
        if not problem.is_linear_gaussian:
            raise ValueError(
                "problem: DDRM needs a LinearOperator with GaussianNoise (an SVD of A), got "
                f"{type(problem.operator).__name__} with {type(problem.noise).__name__}"
            )
        n = math.prod(image_shape)
        if n > max_dim:
            raise ValueError(
                f"problem: DDRM needs a dense SVD of the operator; the image has {n} values, "
                f"more than max_dim={max_dim}; use daps, pigdm or diffpir (matrix-free), or "
                "raise max_dim"
            )
        try:
            a, y, var = _real_system(problem, image_shape)
        except (NotImplementedError, RuntimeError) as err:
            raise ValueError(
                f"problem: could not form the operator's matrix for the SVD ({err})"
            ) from err
        std = torch.sqrt(var)
        a_w = a / std[:, None]
        y_w = y / std
        u, s, vh = torch.linalg.svd(a_w, full_matrices=True)
        k = s.shape[0]
        keep = s > rcond * float(s.max()) if k and float(s.max()) > 0 else s > 0
        s_full = torch.zeros(n, dtype=a.dtype, device=a.device)
        s_full[:k] = torch.where(keep, s, torch.zeros_like(s))
        self.observed = s_full > 0
        uty = torch.zeros(n, dtype=a.dtype, device=a.device)
        uty[:k] = u[:, :k].T @ y_w
        safe = torch.where(self.observed, s_full, torch.ones_like(s_full))
        self.y_bar = torch.where(self.observed, uty / safe, torch.zeros_like(uty))
        self.sigma_bar = torch.where(self.observed, 1.0 / safe, torch.full_like(s_full, math.inf))
        self.vh = vh
        self.n = n


def _real_system(problem, image_shape):
    """``(A, y, noise_var)`` as real float64 arrays (complex data as stacked Re/Im rows).

    The matrix is built by applying ``forward`` to the canonical basis
    (:meth:`LinearOperator.to_matrix` of the base class), which keeps the imaginary part of
    complex :class:`MatrixOperator` outputs on real inputs.
    """
    n = math.prod(image_shape)
    eye = torch.eye(n, dtype=torch.float64, device=problem.y.device).reshape(n, *image_shape)
    cols = problem.operator.forward(eye).reshape(n, -1)
    return stack_real_rows(problem, cols.transpose(0, 1))


@register_solver("ddrm")
def ddrm(
    problem: InverseProblem,
    prior: Denoiser,
    ctx: RunContext,
    *,
    eta: float = 0.85,
    eta_b: float = 1.0,
    max_dim: int = 4096,
    rcond: float = 1e-10,
    max_batch: int | None = None,
) -> SolverOutput:
    """Run DDRM chains.

    Parameters
    ----------
    eta : float
        Stochasticity in [0, 1] of unobserved and noisier-than-level components.
    eta_b : float
        Weight in [0, 1] of the data for components observed below the current level.
    max_dim : int
        Largest image size (number of values) for which the dense SVD is attempted.
    rcond : float
        Singular values below ``rcond * s_max`` are treated as unobserved.
    max_batch : int, optional
        Run chains in chunks of at most this many (bounds peak memory).
    """
    in_range("eta", eta, 0.0, 1.0)
    in_range("eta_b", eta_b, 0.0, 1.0)
    positive_int("max_dim", max_dim)
    in_range("rcond", rcond, 0.0, 1.0, high_open=True)
    check_max_batch(max_batch)
    spec = SpectralProblem(problem, tuple(ctx.image_shape), max_dim, float(rcond))
    out = run_chunked(lambda c: _ddrm_chunk(prior, c, spec, float(eta), float(eta_b)), ctx,
                      max_batch)
    out.diagnostics["n_observed_components"] = int(spec.observed.sum())
    return out


def _ddrm_chunk(
    prior: Denoiser, ctx: RunContext, spec: SpectralProblem, eta: float, eta_b: float
) -> SolverOutput:
    n, image_shape, dtype, sigmas = ctx.n_samples, ctx.image_shape, ctx.dtype, ctx.sigmas
    generator = ctx.generator
    device = spec.vh.device
    vh = spec.vh.to(dtype)
    y_bar = spec.y_bar.to(dtype)
    sig_y = spec.sigma_bar.to(dtype)
    obs = spec.observed
    steps = len(sigmas) - 1

    def randn() -> torch.Tensor:
        return torch.randn((n, spec.n), dtype=dtype, device=device, generator=generator)

    s0 = float(sigmas[0])
    start_obs = obs & (sig_y <= s0)
    init_std = torch.where(start_obs, torch.sqrt((s0**2 - sig_y**2).clamp(min=0)),
                           torch.full_like(sig_y, s0))
    xb = torch.where(start_obs, y_bar, torch.zeros_like(y_bar)) + init_std * randn()
    x0 = xb @ vh
    for i, s, s_next in ctx.levels("ddrm"):
        x_img = (xb @ vh).reshape(n, *image_shape)
        with torch.no_grad():
            x0 = prior(x_img, torch.full((n,), s, dtype=dtype, device=device))
        check_state(x0, i, "DDRM denoised x0")
        x0b = x0.reshape(n, -1) @ vh.T
        if s_next == 0.0:
            xb = x0b
        else:
            eps = randn()
            c = math.sqrt(1.0 - eta**2) * s_next
            unobs = x0b + c * (xb - x0b) / s + eta * s_next * eps
            safe_sig = torch.where(obs, sig_y, torch.ones_like(sig_y))
            below = x0b + c * (y_bar - x0b) / safe_sig + eta * s_next * eps
            above_std = torch.sqrt((s_next**2 - eta_b**2 * safe_sig**2).clamp(min=0))
            above = (1.0 - eta_b) * x0b + eta_b * y_bar + above_std * eps
            xb = torch.where(~obs, unobs, torch.where(s_next < sig_y, below, above))
        check_state(xb, i, "DDRM state")
        if ctx.callback is not None:
            ctx.report(step=i, sigma=s, x=(xb @ vh).reshape(n, *image_shape), x0_hat=x0)
    samples = (xb @ vh).reshape(n, *image_shape)
    return SolverOutput(samples=samples.detach(), nfe=steps)
