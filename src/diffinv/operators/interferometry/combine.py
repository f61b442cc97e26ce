"""Several observations (bands, days) of one source as one closure-only problem.

Closure phases and log closure amplitudes are formed within each observation (never across
files); a single total-flux constraint is added.  Product names are ``"cphase[i]"`` and
``"logcamp[i]"`` for observation ``i`` and ``"flux"``; :func:`closure_chi2` reports the
reduced chi^2 per product kind (all observations together) and per observation.
"""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import torch

from ..noise import GaussianNoise
from ..problem import InverseProblem
from .observation import Observation
from .products import StackedOperator, TotalFlux, WeightedNoise, data_product_problem

__all__ = ["observation_label", "read_observation", "closure_problem", "closure_chi2"]

CLOSURE_PRODUCTS = ("cphase", "logcamp")


def observation_label(obs: Observation) -> dict[str, Any]:
    """Source, UTC date, day of year and band read from an observation (not assumed).

    The band is ``"lo"``/``"hi"`` for the EHT 2017 bands (227.1 / 229.1 GHz) and the
    frequency in GHz otherwise.
    """
    day = date(1858, 11, 17) + timedelta(days=int(obs.mjd))
    ghz = obs.frequency_hz / 1e9
    band = "lo" if abs(ghz - 227.07) < 0.5 else "hi" if abs(ghz - 229.07) < 0.5 else f"{ghz:.1f}"
    return {
        "source": obs.source or "unknown source",
        "date": day.isoformat(),
        "day_of_year": day.timetuple().tm_yday,
        "band": band,
        "frequency_ghz": round(ghz, 3),
        "file": obs.metadata.get("path", ""),
    }


def read_observation(path: Path, systematic: float, scan_average: bool = True) -> Observation:
    """Read, flag, (scan-average) and add fractional ``systematic`` noise; errors name the file."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*truncated")
            obs = Observation.from_uvfits(path)
    except (OSError, KeyError, TypeError, IndexError, ValueError, UserWarning) as err:
        raise ValueError(
            f"{path}: not a readable EHT UVFITS file (expected random-groups visibilities "
            f"with an AIPS AN table; {err})"
        ) from None
    if len(obs) == 0:
        raise ValueError(f"{path}: expected visibilities, found none after flagging")
    if scan_average:
        obs = obs.average_scans()
    return obs.with_systematic_noise(systematic)


def closure_problem(
    observations: list[Observation],
    image_size: int,
    fov_uas: float,
    total_flux_jy: float,
    flux_sigma_jy: float,
) -> InverseProblem:
    """Closure phases + log closure amplitudes of every observation, plus one flux term.

    Parameters
    ----------
    observations : list of Observation
        Scan-averaged data with their final sigmas (systematic noise included).
    image_size, fov_uas : int, float
        Image grid (pixels per side, micro-arcseconds).
    total_flux_jy, flux_sigma_jy : float
        Total-flux constraint and its sigma, Jy.

    Returns
    -------
    InverseProblem
        On ``(B, 1, N, N)`` images in Jy/pixel; ``y`` float32.
    """
    n, fov = int(image_size), float(fov_uas)
    ops, noises, sizes, names, data = [], [], [], [], []
    for i, obs in enumerate(observations):
        sub = data_product_problem(obs, n, fov, {k: 1.0 for k in CLOSURE_PRODUCTS})
        ops += sub.operator.operators
        noises += sub.noise.noises
        sizes += sub.operator.sizes
        names += [f"{name}[{i}]" for name in sub.noise.names]
        data.append(sub.y[0].to(torch.float64))
    flux = float(total_flux_jy)
    ops.append(TotalFlux(n))
    noises.append(GaussianNoise(float(flux_sigma_jy)))
    sizes.append(1)
    names.append("flux")
    data.append(torch.tensor([flux], dtype=torch.float64))
    stacked = StackedOperator(ops)
    noise = WeightedNoise(noises, sizes, [1.0] * len(noises), names)
    y = torch.cat(data)[None].to(torch.float32)
    return InverseProblem(stacked, noise, y, image_shape=(1, n, n))


def closure_chi2(problem: InverseProblem, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reduced chi^2 ``(B,)`` per product kind (all files together) and per file."""
    noise = problem.noise
    parts = torch.split(problem.y, noise.sizes, dim=1)
    clean = torch.split(problem.forward(x), noise.sizes, dim=1)
    sums: dict[str, list] = {}
    out: dict[str, torch.Tensor] = {}
    for name, nm, a, b in zip(noise.names, noise.noises, parts, clean):
        chi2 = nm.chi2(a.expand_as(b), b)
        m = nm.n_data(a)
        out[name] = chi2 / max(m, 1)
        kind = name.split("[")[0]
        acc = sums.setdefault(kind, [0.0, 0])
        acc[0], acc[1] = acc[0] + chi2, acc[1] + m
    for kind, (chi2, m) in sums.items():
        out[kind] = chi2 / max(m, 1)
    return out


