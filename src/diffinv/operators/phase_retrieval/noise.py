r"""Noise models for diffraction data.

* :class:`PhotonNoise` -- Poisson photon counts with a *flux*:

  .. math:: k \sim \mathrm{Poisson}(\phi\, I(x)),\qquad y = k / \phi

  ``I(x)`` is the clean intensity returned by an operator with ``measure="intensity"`` and
  ``phi`` the flux in photons per unit intensity.  The data ``y`` stay in intensity units
  (so they plug into the same operator); the log-likelihood is the exact Poisson log pmf of
  the counts ``k = phi y``.  This is :class:`diffinv.operators.PoissonNoise` with
  ``gain = 1 / phi``.  :func:`flux_for_photons` picks ``phi`` for a target mean photon
  count per diffraction pattern.
* Gaussian noise on intensities: :class:`diffinv.operators.GaussianNoise` with an
  intensity operator.  Gaussian noise on amplitudes: the same with an operator built with
  ``measure="amplitude"``.
* :class:`AmplitudeGaussianNoise` -- Gaussian noise on the *square roots* of intensity data
  (the variance-stabilised approximation of photon counting: ``sqrt(k)`` has standard
  deviation about 1/2, so ``sigma = 1 / (2 sqrt(phi))`` in intensity units).  Used with an
  intensity operator it gives the widely used amplitude loss
  ``||sqrt(y) - |Bx| ||^2 / (2 sigma^2)``.
"""

from __future__ import annotations

import math

import torch

from ..noise import GaussianNoise, PoissonNoise, sum_per_item

__all__ = ["PhotonNoise", "AmplitudeGaussianNoise", "GaussianNoise", "flux_for_photons"]


def flux_for_photons(y_clean: torch.Tensor, photons: float) -> float:
    """Flux ``phi`` giving ``photons`` expected counts per pattern on average.

    Parameters
    ----------
    y_clean : torch.Tensor
        ``(batch, n_patterns, M, N)`` clean intensities.
    photons : float
        Target mean total photon count of one diffraction pattern.
    """
    if not (photons > 0 and math.isfinite(photons)):
        raise ValueError(f"photons: expected a positive finite number, got {photons!r}")
    per_pattern = float(y_clean.detach().sum(dim=(-2, -1)).mean())
    if not per_pattern > 0:
        raise ValueError("y_clean: expected positive total intensity")
    return photons / per_pattern


class PhotonNoise(PoissonNoise):
    """Poisson photon counts at ``flux`` photons per unit intensity (module docstring).

    Parameters
    ----------
    flux : float
        Photons per unit of the operator's intensity, positive.  Higher flux, less noise:
        the relative noise of a pixel with intensity ``I`` is ``1 / sqrt(flux I)``.
    floor : float
        Lower bound of the Poisson rate (in photons) inside the log-likelihood.
    """

    def __init__(self, flux: float, floor: float = 1e-8):
        if not (isinstance(flux, (int, float)) and flux > 0 and math.isfinite(flux)
                and math.isfinite(1.0 / flux)):
            raise ValueError(
                f"flux: expected a positive finite number with a finite 1/flux, got {flux!r}"
            )
        super().__init__(gain=1.0 / float(flux), floor=floor)
        self.flux = float(flux)

    def counts(self, y: torch.Tensor) -> torch.Tensor:
        """Photon counts ``flux * y`` of intensity data."""
        return y * self.flux

    def __repr__(self) -> str:
        return f"PhotonNoise(flux={self.flux})"


class AmplitudeGaussianNoise:
    r"""Gaussian noise on amplitudes of intensity data.

    With the signed square ``s(a) = a |a|`` and its inverse ``s^{-1}(y) = sign(y) sqrt|y|``:

    .. math:: a = \sqrt{I(x)} + n,\quad n \sim \mathcal N(0, \sigma^2),\qquad y = s(a)

    so ``y`` is in intensity units (non-negative except where noise pushes the amplitude
    below zero) and the model is exact in both directions.  The log-likelihood is the
    density of ``y``: ``log N(s^{-1}(y); sqrt(I), sigma^2) - log(2 sqrt|y|)`` (the Jacobian
    term does not depend on ``x``; ``|y|`` is floored at ``tiny`` to keep it finite).

    Parameters
    ----------
    sigma : float
        Amplitude standard deviation in sqrt-intensity units; for photon data at flux
        ``phi``, ``sigma = 1 / (2 sqrt(phi))`` (see :meth:`from_flux`).
    """

    def __init__(self, sigma: float, tiny: float = 1e-12):
        if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma: expected a positive finite number, got {sigma!r}")
        self.sigma = float(sigma)
        self.tiny = float(tiny)

    @classmethod
    def from_flux(cls, flux: float) -> AmplitudeGaussianNoise:
        """The variance-stabilised approximation of :class:`PhotonNoise` at ``flux``."""
        if not (flux > 0 and math.isfinite(flux)):
            raise ValueError(f"flux: expected a positive finite number, got {flux!r}")
        return cls(0.5 / math.sqrt(flux))

    @staticmethod
    def amplitude(y: torch.Tensor) -> torch.Tensor:
        """``sign(y) sqrt|y|``, the inverse of the signed square."""
        return torch.sign(y) * torch.sqrt(y.abs())

    def _clean_amplitude(self, y_clean: torch.Tensor) -> torch.Tensor:
        if y_clean.is_complex():
            raise ValueError("y_clean: expected real intensities")
        # d sqrt(I)/dI is infinite at 0; the small offset keeps gradients finite
        return torch.sqrt(torch.clamp(y_clean, min=0.0) + self.tiny)

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``y = s(sqrt(I) + sigma eps)`` (a new tensor)."""
        a = torch.sqrt(torch.clamp(y_clean, min=0.0))
        a = a + self.sigma * torch.randn(
            a.shape, dtype=a.dtype, device=a.device, generator=generator
        )
        return a * a.abs()

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """``sum (s^{-1}(y) - sqrt(I))^2 / sigma^2`` per batch item."""
        r = (self.amplitude(y) - self._clean_amplitude(y_clean)) / self.sigma
        return sum_per_item(r**2)

    def n_data(self, y: torch.Tensor) -> int:
        return math.prod(y.shape[1:])

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Log density of ``y`` per batch item, constants and Jacobian included."""
        n = self.n_data(y)
        jac = sum_per_item(torch.log(2.0 * torch.sqrt(torch.clamp(y.abs(), min=self.tiny))))
        return (
            -0.5 * self.chi2(y, y_clean)
            - n * math.log(self.sigma)
            - 0.5 * n * math.log(2 * math.pi)
            - jac.to(y.dtype)
        )

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Amplitude residual norm ``||s^{-1}(y) - sqrt(I)||`` per item."""
        r = self.amplitude(y) - self._clean_amplitude(y_clean)
        return torch.sqrt(sum_per_item(r**2))

    def __repr__(self) -> str:
        return f"AmplitudeGaussianNoise(sigma={self.sigma})"
