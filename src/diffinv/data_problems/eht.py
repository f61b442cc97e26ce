"""EHT UVFITS files -> one closure-only imaging problem (``diffinv reconstruct --data``).

Each file (one day and band) is read, flagged, scan-averaged and given a systematic-noise
budget; its closure phases and log closure amplitudes (formed within the file, never across
files) become data products of one :class:`~diffinv.operators.InverseProblem`, together with
one total-flux constraint.  Defaults follow the EHT M87 imaging (Paper IV, EHT Collaboration
2019, ApJL 875, L4): closure-only data, scan averaging, a 1-2 % systematic budget, compact
flux about 0.6 Jy.  The prior defaults to the shipped learned ``blackhole`` prior (32 x 32
pixels over 160 micro-arcseconds).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import torch

from ..demos.registry import Demo
from ..operators.interferometry import Observation, data_product_problem
from ..operators.interferometry.products import StackedOperator, TotalFlux, WeightedNoise
from ..operators.noise import GaussianNoise
from ..operators.problem import InverseProblem

__all__ = ["EHTSettings", "load_eht", "observation_label", "eht_problem"]

CLOSURE_PRODUCTS = ("cphase", "logcamp")


@dataclass(frozen=True)
class EHTSettings:
    """Defaults of the EHT closure-only problem (all printed and stored with the result).

    Attributes
    ----------
    image_size : int
        Pixels per side (must match the prior's image shape).
    fov_uas : float
        Field of view, micro-arcseconds.
    systematic : float
        Fractional systematic noise added in quadrature to each visibility sigma.
    total_flux_jy : float
        Compact total flux density for the flux constraint, Jy.
    flux_fraction : float
        Sigma of the flux constraint as a fraction of ``total_flux_jy``.
    scan_average : bool
        Coherently average each baseline over each scan before forming closures.
    """

    image_size: int = 32
    fov_uas: float = 160.0
    systematic: float = 0.02
    total_flux_jy: float = 0.6
    flux_fraction: float = 0.05
    scan_average: bool = True


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


def _read(path: Path, settings: EHTSettings) -> Observation:
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
    if settings.scan_average:
        obs = obs.average_scans()
    return obs.with_systematic_noise(settings.systematic)


def eht_problem(observations: list[Observation], settings: EHTSettings) -> InverseProblem:
    """Closure phases + log closure amplitudes of every observation, plus one flux term.

    Product names are ``"cphase[i]"``/``"logcamp[i]"`` for observation ``i`` and ``"flux"``.
    """
    n, fov = settings.image_size, settings.fov_uas
    ops, noises, sizes, names, data = [], [], [], [], []
    for i, obs in enumerate(observations):
        sub = data_product_problem(obs, n, fov, {k: 1.0 for k in CLOSURE_PRODUCTS})
        ops += sub.operator.operators
        noises += sub.noise.noises
        sizes += sub.operator.sizes
        names += [f"{name}[{i}]" for name in sub.noise.names]
        data.append(sub.y[0].to(torch.float64))
    flux = settings.total_flux_jy
    ops.append(TotalFlux(n))
    noises.append(GaussianNoise(settings.flux_fraction * flux))
    sizes.append(1)
    names.append("flux")
    data.append(torch.tensor([flux], dtype=torch.float64))
    stacked = StackedOperator(ops)
    noise = WeightedNoise(noises, sizes, [1.0] * len(noises), names)
    y = torch.cat(data)[None].to(torch.float32)
    return InverseProblem(stacked, noise, y, image_shape=(1, n, n))


def product_chi2(problem: InverseProblem, x: torch.Tensor) -> dict[str, torch.Tensor]:
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


def load_eht(paths: list[Path], prior=None, settings: EHTSettings | None = None) -> Demo:
    """Build the closure-only M87-style problem from one or more UVFITS files.

    Parameters
    ----------
    paths : list of Path
        UVFITS files (bands and days of one source).
    prior : callable, optional
        Denoiser on ``(B, 1, N, N)`` Jy/pixel images; default the learned ``blackhole``.
    settings : EHTSettings, optional

    Returns
    -------
    Demo
        With ``metadata`` holding the labels of every file and the settings.
    """
    settings = settings or EHTSettings()
    obs = [_read(Path(p), settings) for p in paths]
    labels = [observation_label(o) for o in obs]
    sources = sorted({lab["source"] for lab in labels})
    if len(sources) > 1:
        raise ValueError(f"data: files observe different sources {sources}; give one source")
    if prior is None:
        from ..priors import load as load_prior

        prior = load_prior("blackhole")
    problem = eht_problem(obs, settings)
    days = ", ".join(sorted({f"{lab['date']} {lab['band']}" for lab in labels}))
    n, fov = settings.image_size, settings.fov_uas
    meta = {
        "kind": "eht",
        "units": "Jy/pixel",
        "fov_uas": fov,
        "pixel_size_uas": fov / n,
        "ra_deg": obs[0].ra_deg,
        "dec_deg": obs[0].dec_deg,
        "frequency_hz": float(sum(o.frequency_hz for o in obs) / len(obs)),
        "mjd": min(o.mjd for o in obs),
        "source": sources[0],
        "observations": labels,
        "files": [str(p) for p in paths],
        "label": "{} {} {}".format(
            sources[0],
            "/".join(sorted({lab["date"] for lab in labels})),
            "+".join(sorted({lab["band"] for lab in labels})),
        ),
        "orientation": "row 0 north, column 0 east",
        "settings": {
            **settings.__dict__,
            "data_products": "closure phases + log closure amplitudes (per file) + total flux",
        },
        "n_closure_phases": int(sum(s for s, nm in _sizes(problem) if nm.startswith("cphase"))),
        "n_log_closure_amplitudes": int(
            sum(s for s, nm in _sizes(problem) if nm.startswith("logcamp"))
        ),
    }
    return Demo(
        problem=problem,
        prior=prior,
        x_true=None,
        description=(
            f"{n}x{n} image (Jy/pixel, {fov:g} uas) of {sources[0]} from closure phases and "
            f"log closure amplitudes of {len(obs)} EHT file(s): {days}"
        ),
        solver_defaults=EHT_SOLVER_DEFAULTS,
        to_image=lambda x: x[:, 0],
        metadata=meta,
    )


def _sizes(problem: InverseProblem) -> list[tuple[int, str]]:
    return list(zip(problem.noise.sizes, problem.noise.names))


EHT_SOLVER_DEFAULTS: dict[str, Any] = {
    "solver": "daps",
    "steps": 50,
    "options": {"ode_steps": 1, "data_step": "hmc", "langevin_steps": 5, "lipschitz": 1e10},
}


