"""Fit-quality checks run once after sampling: results that look wrong must say so.

:func:`fit_warnings` inspects the reduced chi^2 of the posterior mean and, when the caller
gives one, the physical range of the image values (attenuation and flux density cannot be
negative).  Each finding is one plain sentence; :func:`diffinv.sample` stores the list in
``posterior.diagnostics["warnings"]`` and emits it as a :class:`RuntimeWarning`, and
``diffinv reconstruct`` prints it and records it in ``summary.json``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["fit_warnings", "CHI2_WARN", "RANGE_TOLERANCE"]

#: reduced chi^2 of the posterior mean above which the fit is reported as failed
CHI2_WARN = 10.0
#: values further outside the physical range than this fraction of the image's largest
#: magnitude are reported (smaller excursions are ordinary posterior noise)
RANGE_TOLERANCE = 0.05


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fit_warnings(
    diagnostics: dict[str, Any],
    mean: torch.Tensor,
    physical_range: tuple[float, float] | None = None,
    units: str = "",
) -> list[str]:
    """Sentences describing a failed fit or unphysical values (empty list: nothing found).

    Parameters
    ----------
    diagnostics : dict
        Holds ``reduced_chi2_mean`` (float or the string ``"nan"``/``"inf"``).
    mean : torch.Tensor
        Posterior mean ``image_shape`` (real or complex; complex images skip the range test).
    physical_range : (float, float), optional
        Lowest and highest physical value of a pixel, in the image's units (``-inf``/``inf``
        for no bound); e.g. ``(0, inf)`` for attenuation (1/mm) or flux density (Jy/pixel).
    units : str
        Units named in the message.
    """
    found = []
    chi2 = _as_float(diagnostics.get("reduced_chi2_mean"))
    if not math.isfinite(chi2) or chi2 > CHI2_WARN:
        found.append(
            f"fit: the posterior mean misfits the data, reduced chi^2 = {chi2:.4g} (expected "
            f"about 1, warning above {CHI2_WARN:g}); the samples are not a valid posterior - "
            "try more steps, a smaller step size or another solver"
        )
    if physical_range is not None and not mean.is_complex():
        lo, hi = (float(v) for v in physical_range)
        m = mean.detach().to(torch.float64)
        scale = float(m.abs().max()) if m.numel() else 0.0
        tol = RANGE_TOLERANCE * scale
        unit = f" {units}" if units else ""
        if math.isfinite(lo) and float(m.min()) < lo - tol:
            frac = float((m < lo - tol).to(torch.float64).mean())
            found.append(
                f"range: the posterior mean has values down to {float(m.min()):.4g}{unit}, below "
                f"the physical minimum {lo:g}{unit} ({100 * frac:.3g}% of pixels)"
            )
        if math.isfinite(hi) and float(m.max()) > hi + tol:
            frac = float((m > hi + tol).to(torch.float64).mean())
            found.append(
                f"range: the posterior mean has values up to {float(m.max()):.4g}{unit}, above "
                f"the physical maximum {hi:g}{unit} ({100 * frac:.3g}% of pixels)"
            )
    return found
