"""Per-task metrics of a study (names as in :data:`diffinv.study.spec.METRICS`).

==============  ===========================================================================
``psnr``        PSNR of the posterior mean against the held-out truth, dB, with the truth's
                data range (max - min) as peak (:func:`diffinv.report.psnr`)
``rmse``        root mean square error of the posterior mean, in the problem's units
``coverage``    ``coverage_NN``: fraction of truth pixels inside the central credible interval
                at each of the spec's ``coverage_levels`` (``NN`` = level in percent)
``calibration`` the calibration curve (nominal 0.05..0.95 vs empirical coverage), stored as
                arrays ``calibration_nominal`` / ``calibration_empirical`` for the report
``reduced_chi2``  ``reduced_chi2``: reduced chi^2 of the posterior mean against the data;
                ``reduced_chi2_median`` of the samples
``wall_time``   ``wall_seconds``: the sampler's wall time (s); the whole task's time
                (build, sample, summarise) is always stored as ``task_seconds``
``nfe``         denoiser evaluations per chain
``ess``         effective sample size (``n`` for unweighted samples)
==============  ===========================================================================

Metrics needing the truth are NaN when the problem has none, and the coverage ones also
when the samples are complex or fewer than 2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..posterior import Posterior
from ..report import psnr

__all__ = ["compute_metrics", "coverage_key", "CALIBRATION_LEVELS"]

#: Nominal levels of the stored calibration curve.
CALIBRATION_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))


def coverage_key(level: float) -> str:
    """Metric name of the coverage at ``level`` (``0.9 -> "coverage_90"``, ``0.95 ->
    "coverage_95"``, ``0.975 -> "coverage_97.5"``)."""
    pct = round(100.0 * float(level), 6)
    return f"coverage_{int(pct)}" if pct == int(pct) else f"coverage_{pct:g}"


def compute_metrics(
    posterior: Posterior, truth: torch.Tensor | None, settings: dict[str, Any]
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Metrics requested in ``settings["metrics"]`` and arrays for the report.

    Parameters
    ----------
    posterior : Posterior
        Result of the task's reconstruction.
    truth : torch.Tensor or None
        Held-out truth of shape ``image_shape`` (or ``(1, *image_shape)``).
    settings : dict
        The task settings (``metrics``, ``coverage_levels``).

    Returns
    -------
    metrics : dict of str to float
        Scalar metrics (float; NaN where undefined).
    arrays : dict of str to numpy.ndarray
        ``calibration_nominal`` / ``calibration_empirical`` (float64, shape ``(19,)``) when
        ``calibration`` is requested and defined.
    """
    wanted = set(settings["metrics"])
    d = posterior.diagnostics
    out: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {}
    if truth is not None:
        truth = truth.detach().cpu()
        if truth.shape != posterior.mean.shape and truth.shape[0] == 1:
            truth = truth[0]
    intervals_ok = (
        truth is not None and not posterior.samples.is_complex() and posterior.n_samples >= 2
    )
    if "psnr" in wanted:
        out["psnr"] = psnr(posterior.mean, truth) if truth is not None else math.nan
    if "rmse" in wanted:
        out["rmse"] = (
            float(((posterior.mean - truth).abs().to(torch.float64) ** 2).mean().sqrt())
            if truth is not None else math.nan
        )
    if "coverage" in wanted:
        for level in settings["coverage_levels"]:
            value = posterior.coverage(truth, level) if intervals_ok else math.nan
            out[coverage_key(level)] = value
    if "calibration" in wanted and intervals_ok:
        nominal, empirical = posterior.calibration_curve(truth, list(CALIBRATION_LEVELS))
        arrays["calibration_nominal"] = nominal.numpy()
        arrays["calibration_empirical"] = empirical.numpy()
    if "reduced_chi2" in wanted:
        out["reduced_chi2"] = _float(d.get("reduced_chi2_mean"))
        out["reduced_chi2_median"] = _float(d.get("reduced_chi2_median"))
    if "wall_time" in wanted:
        out["wall_seconds"] = _float(d.get("wall_seconds"))
    if "nfe" in wanted:
        out["nfe"] = _float(d.get("nfe"))
    if "ess" in wanted:
        out["ess"] = float(posterior.ess)
    return out, arrays


def _float(value: Any) -> float:
    """Numbers (and the strings ``"nan"``/``"inf"`` of JSON diagnostics) as float."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
