r"""Transmission (Beer-Lambert) noise for X-ray CT, and its Gaussian approximation on log data.

The operator gives line integrals :math:`\ell = A x`; a detector cell counts photons

.. math:: I \sim \mathrm{Poisson}\big(\lambda\big),\qquad \lambda = I_0\,e^{-\ell} + \text{dark},

with :math:`I_0` the incident (blank-scan) counts per cell and ``dark`` the mean background
counts (dark current, scatter).  (For unphysical negative :math:`\ell` the exponential is
continued linearly, see :meth:`TransmissionPoisson.mean_counts`.)  :class:`TransmissionPoisson`
is this model: the data ``y`` are the counts and ``y_clean`` the line integrals, so an
:class:`~diffinv.operators.problem.InverseProblem` joins it directly with a CT projector.

For high counts, the log data :math:`-\log((I - \text{dark}) / I_0)` are approximately Gaussian
around :math:`\ell` with variance :math:`I / (I - \text{dark})^2` (delta method; Sauer & Bouman,
IEEE Trans. Signal Process. 41(2), 1993); :func:`gaussian_log_data` returns these line
integrals and a matching :class:`~diffinv.operators.noise.GaussianNoise`.
"""

from __future__ import annotations

import math

import torch

from ..noise import GaussianNoise, check_counts, check_finite, sum_per_item

__all__ = ["TransmissionPoisson", "gaussian_log_data", "counts_to_line_integrals"]


def _as_counts_param(name: str, value, allow_zero: bool) -> float | torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    bad = (t < 0) if allow_zero else (t <= 0)
    if t.is_complex() or not bool(torch.isfinite(t).all()) or bool(bad.any()):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name}: expected {kind} finite counts, got {value!r}")
    return value if isinstance(value, torch.Tensor) else float(value)


class TransmissionPoisson:
    r"""Poisson photon counts behind an attenuating object.

    .. math:: y \sim \mathrm{Poisson}\big(I_0 e^{-\ell} + \text{dark}\big),\qquad \ell = A x

    Parameters
    ----------
    I0 : float or torch.Tensor
        Incident counts per detector cell (positive; a tensor broadcastable to one sinogram
        item gives per-cell flat-field counts).
    dark : float or torch.Tensor
        Mean background counts added to every cell (non-negative).
    floor : float
        Lower bound on the Poisson mean inside the log-likelihood (keeps it finite).

    Notes
    -----
    ``sample(y_clean)`` takes line integrals and returns counts (float tensor of integers);
    ``log_likelihood(y, y_clean)`` takes counts ``y`` and line integrals ``y_clean``.
    """

    def __init__(
        self, I0: float | torch.Tensor, dark: float | torch.Tensor = 0.0, floor: float = 1e-8
    ):
        self.I0 = _as_counts_param("I0", I0, allow_zero=False)
        self.dark = _as_counts_param("dark", dark, allow_zero=True)
        if not floor > 0:
            raise ValueError(f"floor: expected a positive number, got {floor!r}")
        self.floor = float(floor)

    def check_data(self, y: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``y`` holds real, non-negative photon counts."""
        check_counts("y", y)

    def _param(self, v, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(v, dtype=like.dtype, device=like.device)

    def mean_counts(self, y_clean: torch.Tensor) -> torch.Tensor:
        """Expected counts ``I0 exp(-y_clean) + dark``.

        Negative line integrals are unphysical but appear in early iterates of samplers; there
        the exponential is continued by its tangent at 0, ``I0 (1 - y_clean)``, so the counts,
        the likelihood and its gradient stay finite (the model is unchanged for
        ``y_clean >= 0``).
        """
        if y_clean.is_complex():
            raise ValueError("y_clean: expected real line integrals")
        ell = y_clean
        pos = ell >= 0
        # inner where (not clamp) so the gradient at ell = 0 is the exponential's, -1
        trans = torch.where(
            pos, torch.exp(-torch.where(pos, ell, torch.zeros_like(ell))), 1.0 - ell
        )
        return self._param(self.I0, ell) * trans + self._param(self.dark, ell)

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw counts for line integrals ``y_clean`` (a new tensor, same shape and dtype)."""
        check_finite("y_clean", y_clean)
        lam = self.mean_counts(y_clean).clamp(min=0.0)
        return torch.poisson(lam, generator=generator)

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Poisson log probability of counts ``y`` per batch item, constants included."""
        lam = self.mean_counts(y_clean).clamp(min=self.floor)
        return sum_per_item(y * torch.log(lam) - lam - torch.lgamma(y + 1.0))

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Pearson chi-square ``sum (y - lam)^2 / lam`` per batch item."""
        lam = self.mean_counts(y_clean).clamp(min=self.floor)
        return sum_per_item((y - lam) ** 2 / lam)

    def n_data(self, y: torch.Tensor) -> int:
        """Number of count values in one item."""
        return math.prod(y.shape[1:])

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Count residual weighted by ``1 / max(y, 1)``: ``sqrt(sum (y - lam)^2 / max(y, 1))``.

        The Gaussian approximation of the Poisson likelihood (the DPS paper's weighting).
        """
        lam = self.mean_counts(y_clean)
        return torch.sqrt(sum_per_item((y - lam) ** 2 / y.clamp(min=1.0)))

    def __repr__(self) -> str:
        i0 = self.I0 if not isinstance(self.I0, torch.Tensor) else "tensor"
        dk = self.dark if not isinstance(self.dark, torch.Tensor) else "tensor"
        return f"TransmissionPoisson(I0={i0}, dark={dk})"


def counts_to_line_integrals(
    counts: torch.Tensor,
    I0: float | torch.Tensor,
    dark: float | torch.Tensor = 0.0,
    min_counts: float = 0.5,
) -> torch.Tensor:
    """Log data ``-log((counts - dark) / I0)`` with ``counts - dark`` clamped to ``min_counts``."""
    check_finite("counts", counts)
    net = (counts - torch.as_tensor(dark, dtype=counts.dtype, device=counts.device)).clamp(
        min=min_counts
    )
    return -torch.log(net / torch.as_tensor(I0, dtype=counts.dtype, device=counts.device))


def gaussian_log_data(
    counts: torch.Tensor,
    I0: float | torch.Tensor,
    dark: float | torch.Tensor = 0.0,
    min_counts: float = 0.5,
) -> tuple[torch.Tensor, GaussianNoise]:
    """Line integrals from counts and the Gaussian noise model of their errors.

    Parameters
    ----------
    counts : torch.Tensor
        Measured counts ``(batch, 1, n_angles, n_detectors)``.
    I0, dark : float or torch.Tensor
        Incident and background counts, as in :class:`TransmissionPoisson`.
    min_counts : float
        Floor on ``counts - dark`` (photon starvation).

    Returns
    -------
    line_integrals : torch.Tensor
        ``-log((counts - dark) / I0)``, same shape as ``counts``.
    noise : GaussianNoise
        Per-measurement sigma ``sqrt(max(counts, min_counts)) / max(counts - dark, min_counts)``
        (the delta-method standard deviation), shaped like one item.
    """
    ell = counts_to_line_integrals(counts, I0, dark, min_counts)
    net = (counts - torch.as_tensor(dark, dtype=counts.dtype, device=counts.device)).clamp(
        min=min_counts
    )
    sigma = torch.sqrt(counts.clamp(min=min_counts)) / net
    return ell, GaussianNoise(sigma[0] if sigma.shape[0] == 1 else sigma)
