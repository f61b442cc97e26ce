"""EHT results: per-product chi^2, ring parameters over posterior samples, FITS with WCS.

Ring parameters (REx-style, :func:`~diffinv.operators.interferometry.ring_metrics`) are
measured on every posterior sample; the summary gives their median and central 68 %
interval (16th-84th percentiles) over the samples whose ring extraction succeeded, and the
number that failed.  Position angles (east of north) are summarised on the circle: angles
are unwrapped around their circular mean before taking percentiles.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..datasets.fits_image import write_fits_image
from ..demos.registry import Demo
from ..operators.interferometry import ring_metrics
from ..operators.interferometry.combine import closure_chi2
from ..posterior import Posterior

__all__ = ["ring_summary", "eht_summary", "write_eht_fits"]


def _interval(values: np.ndarray) -> dict[str, float]:
    lo, med, hi = np.percentile(values, [16, 50, 84])
    return {"median": float(med), "lo68": float(lo), "hi68": float(hi)}


def ring_summary(images: torch.Tensor, fov_uas: float) -> dict[str, Any]:
    """Median and 68 % interval of diameter, width and position angle over ``(K, 1, N, N)``.

    Returns
    -------
    dict
        ``diameter_uas``, ``width_uas``, ``position_angle_deg`` (each ``median``, ``lo68``,
        ``hi68``), ``n_rings`` measured and ``n_failed`` with the failure ``reasons``.
    """
    found = [ring_metrics(img, fov_uas) for img in images.detach().to(torch.float64)]
    good = [m for m in found if m.ok]
    out: dict[str, Any] = {
        "n_rings": len(good),
        "n_failed": len(found) - len(good),
        "reasons": sorted({m.reason for m in found if not m.ok}),
    }
    if not good:
        return out
    out["diameter_uas"] = _interval(np.array([m.diameter_uas for m in good]))
    out["width_uas"] = _interval(np.array([m.width_uas for m in good]))
    pa = np.radians([m.position_angle_deg for m in good])
    centre = math.atan2(np.sin(pa).mean(), np.cos(pa).mean())
    unwrapped = centre + (pa - centre + math.pi) % (2 * math.pi) - math.pi
    stats = _interval(np.degrees(unwrapped))
    out["position_angle_deg"] = {k: v % 360.0 for k, v in stats.items()}
    return out


def eht_summary(demo: Demo, posterior: Posterior) -> dict[str, Any]:
    """Reduced chi^2 of each data product (posterior mean; median over samples) and rings."""
    problem = demo.problem
    mean = posterior.mean[None].to(torch.float32)
    samples = posterior.samples.to(torch.float32)
    chi_mean = {k: float(v[0]) for k, v in closure_chi2(problem, mean).items()}
    chi_samples = {k: float(v.median()) for k, v in closure_chi2(problem, samples).items()}
    fov = float(demo.metadata["fov_uas"])
    ring_mean = ring_metrics(posterior.mean.to(torch.float64), fov)
    return {
        "reduced_chi2_mean_by_product": chi_mean,
        "reduced_chi2_sample_median_by_product": chi_samples,
        "ring_samples": ring_summary(samples, fov),
        "ring_mean": {
            "ok": ring_mean.ok,
            "reason": ring_mean.reason,
            "diameter_uas": ring_mean.diameter_uas,
            "width_uas": ring_mean.width_uas,
            "position_angle_deg": ring_mean.position_angle_deg,
        },
    }


def write_eht_fits(out: Path, posterior: Posterior, demo: Demo) -> list[str]:
    """``mean.fits``, ``std.fits``, ``samples.fits`` with a celestial WCS (RA left)."""
    meta = demo.metadata
    kw = {
        "ra_deg": meta["ra_deg"],
        "dec_deg": meta["dec_deg"],
        "frequency_hz": meta["frequency_hz"],
        "mjd": meta["mjd"],
        "source": meta["source"],
        "extra": {"MJD": float(meta["mjd"])},  # the card eht-imaging reads the date from
    }
    names = []
    for name in ("mean", "std", "samples"):
        write_fits_image(out / f"{name}.fits", getattr(posterior, name), meta["fov_uas"], **kw)
        names.append(f"{name}.fits")
    return names
