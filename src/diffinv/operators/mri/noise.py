r"""Complex Gaussian k-space noise with a coil covariance, and its exact log-likelihood."""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator
from ..noise import GaussianNoise, check_finite
from ..problem import InverseProblem

__all__ = ["CoilMixing", "CoilNoise"]


class CoilNoise:
    r"""Circularly symmetric complex Gaussian noise correlated across receive coils.

    .. math::
        y = A(x) + n,\qquad n_{\cdot, j} \sim \mathcal{CN}(0, \Sigma)\ \text{i.i.d. over
        k-space samples } j

    with ``Sigma = E[n n^H]`` the ``(coils, coils)`` covariance (each of the real and imaginary
    parts has covariance ``Re(Sigma) / 2``).  Hence ``CoilNoise(2 sigma^2 I)`` equals the
    foundation's ``GaussianNoise(sigma)`` (sigma per real/imaginary part).  The log density
    per batch item, over the ``M`` acquired samples of each coil, is

    .. math:: \log p(y|x) = -\sum_j r_j^H \Sigma^{-1} r_j - M \log\det(\pi \Sigma).

    Parameters
    ----------
    covariance : torch.Tensor or float
        ``(coils, coils)`` Hermitian positive definite matrix, ``(coils,)`` per-coil variances,
        or one variance for every coil.
    mask : torch.Tensor, optional
        Boolean mask broadcastable to the trailing data axes (e.g. the ``(H, W)`` Cartesian
        sampling mask): only ``True`` locations are noisy and enter the likelihood (the
        zero-filled, unacquired entries of :class:`MultiCoilMRI` data carry no information).

    Notes
    -----
    Data are ``(batch, coils, ...)``; the coil axis is dimension 1.
    """

    def __init__(self, covariance: torch.Tensor | float, mask: torch.Tensor | None = None):
        cov = torch.as_tensor(covariance)
        check_finite("covariance", cov)
        if cov.ndim == 0:
            cov = cov.reshape(1)
        if cov.ndim == 1:
            if cov.is_complex() or bool((cov <= 0).any()):
                raise ValueError("covariance: expected positive per-coil variances")
            cov = torch.diag(cov.to(torch.float64)).to(torch.complex128)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
            raise ValueError(f"covariance: expected (coils, coils), got {tuple(cov.shape)}")
        cov = cov.to(torch.complex128)
        asym = float((cov - cov.conj().T).abs().max())
        if asym > 1e-6 * max(float(cov.abs().max()), 1e-300):
            raise ValueError(
                f"covariance: expected a Hermitian matrix (cov == cov^H), got an asymmetry of "
                f"{asym:.3g}"
            )
        cov = 0.5 * (cov + cov.conj().T)
        try:
            self._chol = torch.linalg.cholesky(cov)
        except RuntimeError as err:
            raise ValueError("covariance: expected a Hermitian positive definite matrix") from err
        self.covariance = cov
        self.mask = None if mask is None else torch.as_tensor(mask).to(torch.bool)
        self._logdet = 2.0 * float(torch.log(torch.diagonal(self._chol).real).sum())

    @property
    def n_coils(self) -> int:
        """Number of coils of the covariance (1 = shared by every coil)."""
        return self.covariance.shape[0]

    def _chol_for(self, y: torch.Tensor) -> torch.Tensor:
        c = y.shape[1]
        chol = self._chol
        if chol.shape[0] == 1 and c > 1:
            chol = chol[0, 0] * torch.eye(c, dtype=chol.dtype)
        elif chol.shape[0] != c:
            raise ValueError(f"y: expected {chol.shape[0]} coils along dim 1, got {c}")
        return chol.to(device=y.device, dtype=y.dtype)

    def _mask_for(self, y: torch.Tensor) -> torch.Tensor | None:
        return None if self.mask is None else self.mask.to(y.device)

    def _apply_coils(self, mat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        moved = torch.movedim(t, 1, -1)
        return torch.movedim(moved @ mat.transpose(0, 1), -1, 1)

    def _whiten(self, r: torch.Tensor) -> torch.Tensor:
        chol = self._chol_for(r)
        moved = torch.movedim(r, 1, -1).unsqueeze(-1)
        w = torch.linalg.solve_triangular(chol, moved, upper=False).squeeze(-1)
        return torch.movedim(w, -1, 1)

    def _count(self, y: torch.Tensor) -> int:
        """Acquired complex samples per coil in one item."""
        per = math.prod(y.shape[2:])
        if self.mask is None:
            return per
        m = torch.broadcast_to(self._mask_for(y), y.shape[2:])
        return int(m.sum())

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return ``y_clean`` plus correlated coil noise (new tensor); zero where unmasked."""
        if not y_clean.is_complex():
            raise ValueError("y_clean: expected complex k-space data (batch, coils, ...)")
        z = torch.randn(y_clean.shape, dtype=y_clean.dtype, device=y_clean.device,
                        generator=generator)  # CN(0, 1): real/imag variance 1/2 each
        n = self._apply_coils(self._chol_for(y_clean), z)
        mask = self._mask_for(y_clean)
        if mask is not None:
            n = n * mask.to(n.real.dtype)
        return y_clean + n

    def _quad(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        w = self._whiten(y - y_clean)
        power = w.abs() ** 2
        mask = self._mask_for(y)
        if mask is not None:
            power = power * mask.to(power.dtype)
        return power.reshape(power.shape[0], -1).sum(dim=1)

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Exact complex Gaussian log density per batch item, shape ``(batch,)``."""
        c = y.shape[1]
        logdet = self._logdet if self.n_coils == c else c * self._logdet
        m = self._count(y)
        return -self._quad(y, y_clean) - m * (logdet + c * math.log(math.pi))

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """``2 sum |L^{-1} r|^2``: chi-square over the real and imaginary parts."""
        return 2.0 * self._quad(y, y_clean)

    def n_data(self, y: torch.Tensor) -> int:
        """Real data values in one item: ``2 * coils * acquired samples``."""
        return 2 * y.shape[1] * self._count(y)

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Whitened residual norm ``||L^{-1} (y - A x)||`` per item (DPS's step size)."""
        return torch.sqrt(self._quad(y, y_clean))

    def __repr__(self) -> str:
        return f"CoilNoise(coils={self.n_coils}, masked={self.mask is not None})"

    def whitened(self, problem: InverseProblem) -> InverseProblem:
        r"""The same problem with white noise: ``L^{-1} y = L^{-1} A(x) + w``, ``w ~ CN(0, I)``.

        Returns an :class:`InverseProblem` with operator ``CoilMixing(L^{-1}) @ A`` and
        :class:`~diffinv.operators.noise.GaussianNoise` (``sigma = sqrt(1/2)`` per real and
        imaginary part, this noise's ``mask``), so the exact linear-Gaussian solver steps (DAPS's
        closed-form data step, DDRM, SMC-MCGdiff, PiGDM/DiffPIR's CG) apply.  Its
        log-likelihood differs from this one by the constant ``M log det Sigma`` and its chi^2
        is the same.  ``problem`` must use this noise model with a linear operator.
        """
        if problem.noise is not self:
            raise ValueError("problem: expected a problem whose noise model is this CoilNoise")
        if not isinstance(problem.operator, LinearOperator):
            raise ValueError("problem: whitening keeps the problem exact only for a "
                             "LinearOperator")
        wmat = torch.linalg.inv(self._chol_for(problem.y))
        mixing = CoilMixing(wmat)
        noise = GaussianNoise(math.sqrt(0.5), mask=self.mask)
        return InverseProblem(mixing @ problem.operator, noise, mixing(problem.y),
                              image_shape=problem.image_shape)


class CoilMixing(LinearOperator):
    r"""``y_c = sum_d W_{cd} x_d`` along the coil axis (dim 1) of ``(batch, coils, ...)`` data.

    The adjoint applies ``W^H``.  With ``W = L^{-1}`` (``Sigma = L L^H``) it whitens coil
    noise (:meth:`CoilNoise.whitened`).

    Parameters
    ----------
    matrix : torch.Tensor
        ``(coils, coils)`` complex mixing matrix.
    """

    def __init__(self, matrix: torch.Tensor):
        if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2 or (
                matrix.shape[0] != matrix.shape[1]):
            raise ValueError("matrix: expected a square (coils, coils) torch.Tensor")
        check_finite("matrix", matrix)
        self.matrix = matrix

    def _apply(self, mat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if t.shape[1] != mat.shape[0]:
            raise ValueError(f"x: expected {mat.shape[0]} coils along dim 1, got {t.shape[1]}")
        mat = mat.to(device=t.device, dtype=torch.promote_types(mat.dtype, t.dtype))
        return torch.movedim(torch.movedim(t, 1, -1) @ mat.transpose(0, 1), -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(self.matrix, x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply(self.matrix.conj().transpose(0, 1), y)
