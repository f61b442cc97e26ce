"""Noise models: how clean measurements become data, and the matching log-likelihood.

Every noise model implements the :class:`NoiseModel` protocol:

* ``sample(y_clean, generator=None)`` draws noisy data;
* ``log_likelihood(y, y_clean)`` returns ``log p(y | y_clean)`` summed over each batch item,
  shape ``(batch,)``, including normalising constants (so SMC marginal likelihoods are
  meaningful);
* ``chi2(y, y_clean)`` returns the chi-square statistic per batch item and
  ``n_data(y)`` the number of real data values, so ``chi2 / n_data`` is the reduced
  chi-square of a fit (1 for a fit at the noise level);
* ``residual_norm(y, y_clean)`` is the residual norm used by DPS's normalised step.

A user's own noise model needs nothing more than these methods.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch

__all__ = [
    "NoiseModel",
    "GaussianNoise",
    "PoissonNoise",
    "check_finite",
    "check_counts",
    "sum_per_item",
]


@runtime_checkable
class NoiseModel(Protocol):
    """The noise-model contract.

    Device and dtype policy: a noise model casts its own tensors (sigmas, masks, covariances)
    to the device and real dtype of the data it is called with, so it works wherever the data
    live.  It may also define ``to(device)`` to move those tensors once;
    :meth:`InverseProblem.to <diffinv.operators.problem.InverseProblem.to>` calls it when
    present.
    """

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor: ...

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor: ...

    def n_data(self, y: torch.Tensor) -> int: ...

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor: ...


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` if ``t`` contains NaN or Inf."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or Inf values; measurements must be finite")


def check_counts(name: str, y: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``y`` holds real, non-negative counts."""
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of counts, got {type(y).__name__}")
    if y.is_complex():
        raise ValueError(f"{name}: expected real photon counts, got a complex tensor")
    if bool((y < 0).any()):
        raise ValueError(
            f"{name}: expected non-negative photon counts, got a minimum of {float(y.min()):g}"
        )


def sum_per_item(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


def _randn_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=generator)


class GaussianNoise:
    r"""Additive white Gaussian noise, real or complex, optionally on a subset of entries.

    .. math:: y = A(x) + n,\qquad n \sim \mathcal N(0, \sigma^2)

    For complex data the real and imaginary parts are independent, each with standard
    deviation ``sigma`` (the radio-astronomy convention for visibility sigmas, and the one
    under which a complex problem equals a real problem on ``(Re, Im)`` pairs).

    Parameters
    ----------
    sigma : float or torch.Tensor
        Standard deviation, a positive number or a tensor broadcastable to one measurement
        item (per-measurement sigmas, e.g. thermal noise of each baseline).
    mask : torch.Tensor, optional
        Boolean tensor broadcastable to one measurement item: only ``True`` entries are
        measured.  The others (e.g. the zero-filled, unacquired k-space entries of
        :class:`~diffinv.operators.mri.MultiCoilMRI`) get no noise and do not enter the
        likelihood, chi^2, data count or residual norm; the exact linear-Gaussian solvers drop
        them (:meth:`GaussianNoise.weights`).
    """

    def __init__(self, sigma: float | torch.Tensor, mask: torch.Tensor | None = None):
        s = sigma if isinstance(sigma, torch.Tensor) else torch.as_tensor(
            sigma, dtype=torch.float64
        )
        if s.is_complex() or not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
            raise ValueError(f"sigma: expected positive finite real values, got {sigma!r}")
        self.sigma = sigma if isinstance(sigma, torch.Tensor) else float(sigma)
        if mask is not None:
            mask = torch.as_tensor(mask)
            if mask.dtype != torch.bool:
                raise ValueError(f"mask: expected a boolean tensor, got dtype {mask.dtype}")
            if not bool(mask.any()):
                raise ValueError("mask: no entry is measured")
        self.mask = mask

    def _sigma_like(self, y: torch.Tensor) -> torch.Tensor:
        real = y.real if y.is_complex() else y
        return torch.as_tensor(self.sigma, dtype=real.dtype, device=y.device)

    def _mask_like(self, y: torch.Tensor) -> torch.Tensor | None:
        """The mask broadcast to one item of ``y`` (None when every entry is measured)."""
        if self.mask is None:
            return None
        try:
            return torch.broadcast_to(self.mask.to(y.device), y.shape[1:])
        except RuntimeError as err:
            raise ValueError(
                f"mask: shape {tuple(self.mask.shape)} does not broadcast to the measurement "
                f"shape {tuple(y.shape[1:])}"
            ) from err

    def weights(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse variances ``1 / sigma^2`` of one item of ``y``, zero where not measured.

        Real tensor of shape ``y.shape[1:]`` in ``y``'s real dtype and device: the weights
        ``W`` of the exact linear-Gaussian data term ``(y - A x)^T W (y - A x)``.
        """
        w = torch.broadcast_to(self._sigma_like(y) ** -2, y.shape[1:]).clone()
        mask = self._mask_like(y)
        return w if mask is None else w * mask.to(w.dtype)

    def to(self, device: torch.device | str) -> GaussianNoise:
        """Move tensor sigmas and the mask to ``device`` (returns self).

        Optional: every method also casts them to the data's device and dtype at call time.
        """
        if isinstance(self.sigma, torch.Tensor):
            self.sigma = self.sigma.to(device)
        if self.mask is not None:
            self.mask = self.mask.to(device)
        return self

    def _masked(self, t: torch.Tensor) -> torch.Tensor:
        mask = self._mask_like(t)
        return t if mask is None else t * mask.to(t.real.dtype if t.is_complex() else t.dtype)

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return ``y_clean`` plus a noise draw (a new tensor); unmeasured entries unchanged."""
        n = self._sigma_like(y_clean) * _randn_like(y_clean, generator) * (
            math.sqrt(2.0) if y_clean.is_complex() else 1.0
        )
        return y_clean + self._masked(n)

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Sum of squared whitened residuals per batch item (real and imaginary counted)."""
        r = (y - y_clean) / self._sigma_like(y)
        return sum_per_item(self._masked(r.abs() ** 2))

    def n_data(self, y: torch.Tensor) -> int:
        """Number of measured real data values in one item (complex counts twice)."""
        mask = self._mask_like(y)
        count = math.prod(y.shape[1:]) if mask is None else int(mask.sum())
        return (2 if y.is_complex() else 1) * count

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Gaussian log density per batch item over the measured entries, constants included."""
        sigma = self._sigma_like(y)
        quad = self.chi2(y, y_clean)
        factor = 2 if y.is_complex() else 1
        log_sigma = torch.broadcast_to(torch.log(sigma), y.shape[1:])
        mask = self._mask_like(y)
        if mask is not None:
            log_sigma = log_sigma[mask]
        log_det = factor * log_sigma.sum()
        n = self.n_data(y)
        return -0.5 * quad - log_det - 0.5 * n * math.log(2 * math.pi)

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Unweighted residual norm ``||y - A(x)||_2`` per item (the DPS paper's choice)."""
        return torch.sqrt(sum_per_item(self._masked((y - y_clean).abs() ** 2)))

    def __repr__(self) -> str:
        s = self.sigma if not isinstance(self.sigma, torch.Tensor) else "tensor"
        masked = "" if self.mask is None else ", masked"
        return f"GaussianNoise(sigma={s}{masked})"


class PoissonNoise:
    r"""Photon-counting noise with a gain (detector units per photon).

    .. math:: y = g\,k,\qquad k \sim \mathrm{Poisson}(A(x) / g)

    so ``y`` is in the same units as ``A(x)`` and its variance is ``g * A(x)``; a smaller gain
    means more photons and less relative noise.

    Parameters
    ----------
    gain : float
        Units of ``y`` per photon, positive.
    floor : float
        Lower bound applied to the Poisson rate inside the log-likelihood to keep it finite
        when ``A(x)`` is zero or slightly negative (in photons).
    """

    def __init__(self, gain: float = 1.0, floor: float = 1e-8):
        if not (gain > 0 and math.isfinite(gain)):
            raise ValueError(f"gain: expected a positive finite number, got {gain!r}")
        if not floor > 0:
            raise ValueError(f"floor: expected a positive number, got {floor!r}")
        self.gain = float(gain)
        self.floor = float(floor)

    def _rate(self, y_clean: torch.Tensor) -> torch.Tensor:
        return torch.clamp(y_clean / self.gain, min=self.floor)

    def check_data(self, y: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``y`` is real and non-negative (scaled counts)."""
        check_counts("y", y)

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw photon counts and return them in the units of ``y_clean``."""
        if y_clean.is_complex():
            raise ValueError("y_clean: Poisson noise needs real, non-negative intensities")
        rate = torch.clamp(y_clean / self.gain, min=0.0)
        return self.gain * torch.poisson(rate, generator=generator)

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Poisson log probability of the counts ``y / gain`` per batch item."""
        k = y / self.gain
        lam = self._rate(y_clean)
        return sum_per_item(k * torch.log(lam) - lam - torch.lgamma(k + 1.0))

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Pearson chi-square ``sum (k - lam)^2 / lam`` in photon units per item."""
        k = y / self.gain
        lam = self._rate(y_clean)
        return sum_per_item((k - lam) ** 2 / lam)

    def n_data(self, y: torch.Tensor) -> int:
        """Number of count values in one item."""
        return math.prod(y.shape[1:])

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Weighted residual norm ``||y - A(x)||_Lambda`` with ``Lambda = 1/(2 max(y, g))``.

        This is the weighting the DPS paper uses for Poisson data.
        """
        w = 1.0 / (2.0 * torch.clamp(y, min=self.gain))
        return torch.sqrt(sum_per_item(w * (y - y_clean) ** 2))

    def __repr__(self) -> str:
        return f"PoissonNoise(gain={self.gain})"
