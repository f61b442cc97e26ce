r"""Conformal recalibration of pixelwise credible intervals.

Approximate samplers often return intervals that are too narrow (or too wide).  Given a
calibration split of posteriors with known truths, :func:`calibrate` fits one scale factor
``q`` so that the rescaled central ``level`` intervals reach the nominal coverage on new,
exchangeable data (split conformal prediction; Vovk, Gammerman & Shafer 2005; Angelopoulos &
Bates 2023, "Conformal Prediction: A Gentle Introduction", sec. 2.2 on conformalised
quantile/uncertainty scalar).

For each pixel with posterior median ``m``, interval ``[lo, hi]`` at ``level`` and truth
``x``, the conformity score is the distance to the median in units of the half-width on that
side:

.. math:: s = \frac{x - m}{hi - m}\ (x \ge m),\qquad s = \frac{m - x}{m - lo}\ (x < m).

With ``n`` scores, ``q`` is the ``ceil((n + 1) level)``-th smallest (the finite-sample
correction); the recalibrated interval ``[m - q (m - lo), m + q (hi - m)]`` then covers a new
pixel with probability at least ``level`` (and below ``level + 1/(n+1)`` without ties) when
calibration and test problems are exchangeable.  Pixels of one image are correlated, so the
guarantee is on the average coverage; its spread is larger than binomial in ``n``.

A fitted :class:`Calibration` is applied to a :class:`Posterior` by stretching the samples
about the pixelwise median by ``q`` (exactly the recalibrated interval at ``level``), is saved
as JSON (atomically) and can be stored under a name in the user directory
``$DIFFINV_HOME/calibrations`` (default ``~/.diffinv/calibrations``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .io import atomic_write
from .posterior import Posterior, weighted_quantile

__all__ = [
    "Calibration",
    "available_calibrations",
    "calibrate",
    "calibration_dir",
    "conformity_scores",
    "load_calibration",
]

_FORMAT = "diffinv.calibration/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def calibration_dir() -> Path:
    """Directory of named calibrations: ``$DIFFINV_HOME/calibrations`` (``~/.diffinv``)."""
    home = os.environ.get("DIFFINV_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".diffinv"
    return base / "calibrations"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".json"):
        raise ValueError(
            f"name: expected letters, digits, '_', '.', '-' (no path separators, no .json "
            f"suffix), got {name!r}"
        )
    return name


def _check_level(level: float) -> float:
    if not (isinstance(level, (int, float)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level: expected a probability in (0, 1), got {level!r}")
    return float(level)


def _truth_like(posterior: Posterior, x_true: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x_true).detach().cpu()
    if tuple(x.shape) != posterior.image_shape and x.ndim == posterior.samples.ndim and (
        x.shape[0] == 1
    ):
        x = x[0]
    if tuple(x.shape) != posterior.image_shape:
        raise ValueError(
            f"truths: expected shape {posterior.image_shape} to match the posterior, got "
            f"{tuple(x.shape)}"
        )
    if x.is_complex() or posterior.samples.is_complex():
        raise ValueError("truths: calibration is defined for real images; take .real/.abs()")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("truths: contains NaN or Inf")
    return x.to(torch.float64)


def _median_and_interval(posterior: Posterior, level: float):
    a = 0.5 * (1.0 - level)
    s = posterior.samples.to(torch.float64)
    med = weighted_quantile(s, posterior.weights, 0.5)
    lo = weighted_quantile(s, posterior.weights, a)
    hi = weighted_quantile(s, posterior.weights, 1.0 - a)
    return med, lo, hi


def conformity_scores(posterior: Posterior, x_true: torch.Tensor, level: float) -> torch.Tensor:
    """Pixelwise scores ``|x - median| / half-width`` (side-dependent), flattened, float64.

    A pixel whose half-width on the relevant side is zero scores 0 if the truth equals the
    median and ``inf`` otherwise.
    """
    level = _check_level(level)
    x = _truth_like(posterior, x_true)
    med, lo, hi = _median_and_interval(posterior, level)
    above = x >= med
    dist = (x - med).abs()
    width = torch.where(above, hi - med, med - lo)
    score = torch.where(width > 0, dist / torch.where(width > 0, width, 1.0),
                        torch.where(dist > 0, math.inf, 0.0))
    return score.reshape(-1)


@dataclass
class Calibration:
    """A fitted conformal scale for central credible intervals.

    Attributes
    ----------
    level : float
        Nominal coverage the scale was fitted for.
    scale : float
        Factor ``q`` applied to the half-widths about the median (1: already calibrated,
        > 1: intervals were too narrow).
    n_scores : int
        Number of calibration pixels.
    empirical_before : float
        Coverage of the uncalibrated intervals on the calibration split.
    metadata : dict
        Free-form description (solver, problem, units).
    """

    level: float
    scale: float
    n_scores: int
    empirical_before: float = float("nan")
    metadata: dict[str, Any] = field(default_factory=dict)

    def interval(self, posterior: Posterior) -> tuple[torch.Tensor, torch.Tensor]:
        """Recalibrated central interval ``(lower, upper)`` at ``self.level``."""
        med, lo, hi = _median_and_interval(posterior, self.level)
        lower = med - self.scale * (med - lo)
        upper = med + self.scale * (hi - med)
        dt = posterior.samples.dtype
        return lower.to(dt), upper.to(dt)

    def apply(self, posterior: Posterior) -> Posterior:
        """Return a new :class:`Posterior` whose samples are stretched about the median.

        ``x' = median + scale * (x - median)`` pixelwise, so ``interval(level)`` of the result
        equals :meth:`interval`; weights are kept; metadata records the calibration.
        """
        if not isinstance(posterior, Posterior):
            raise ValueError(f"posterior: expected a Posterior, got {type(posterior).__name__}")
        if posterior.samples.is_complex():
            raise ValueError("posterior: calibration is defined for real images")
        s = posterior.samples.to(torch.float64)
        med = weighted_quantile(s, posterior.weights, 0.5)
        new = (med + self.scale * (s - med)).to(posterior.samples.dtype)
        metadata = dict(posterior.metadata)
        metadata["calibration"] = {"level": self.level, "scale": self.scale,
                                   "n_scores": self.n_scores, **self.metadata}
        return Posterior(new, posterior.weights, dict(posterior.diagnostics), metadata)

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        before = self.empirical_before
        return {
            "format": _FORMAT,
            "level": self.level,
            "scale": self.scale if math.isfinite(self.scale) else str(self.scale),
            "n_scores": self.n_scores,
            "empirical_before": before if math.isfinite(before) else None,
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike | None = None, *, name: str | None = None) -> Path:
        """Write the calibration as JSON, atomically, to ``path`` or under ``name``.

        Exactly one of ``path`` and ``name`` is given; a name is stored as
        ``calibration_dir() / f"{name}.json"`` (the directory is created).
        """
        if (path is None) == (name is None):
            raise ValueError("path, name: expected exactly one of a file path or a name")
        if name is not None:
            directory = calibration_dir()
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{_check_name(name)}.json"
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        return atomic_write(path, write, suffix=".json.tmp")


def load_calibration(path_or_name: str | os.PathLike) -> Calibration:
    """Load a calibration from a JSON file path, or by name from :func:`calibration_dir`."""
    path = Path(path_or_name)
    if not path.is_file():
        if isinstance(path_or_name, str) and _NAME.match(path_or_name):
            named = calibration_dir() / f"{path_or_name}.json"
            if named.is_file():
                path = named
            else:
                raise FileNotFoundError(
                    f"path_or_name: no calibration file {str(path_or_name)!r} and no saved "
                    f"calibration named {path_or_name!r} in {str(calibration_dir())!r}; "
                    f"available: {available_calibrations()}"
                )
        else:
            raise FileNotFoundError(f"path_or_name: no calibration file at {str(path)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"path_or_name: {str(path)!r} is not valid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"path_or_name: {str(path)!r} is not a diffinv calibration file")
    before = data.get("empirical_before")
    return Calibration(
        level=float(data["level"]),
        scale=float(data["scale"]),
        n_scores=int(data["n_scores"]),
        empirical_before=float(before) if before is not None else float("nan"),
        metadata=dict(data.get("metadata") or {}),
    )


def available_calibrations() -> list[str]:
    """Names of the calibrations saved in :func:`calibration_dir`."""
    directory = calibration_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if _NAME.match(p.stem))


def calibrate(
    posteriors: Posterior | Sequence[Posterior],
    truths: torch.Tensor | Sequence[torch.Tensor],
    level: float = 0.9,
    metadata: dict[str, Any] | None = None,
) -> Calibration:
    """Fit a conformal interval scale on a calibration split.

    Parameters
    ----------
    posteriors : Posterior or sequence of Posterior
        Posteriors of the calibration problems (same solver and settings as the data the
        calibration will be applied to).
    truths : tensor or sequence of tensors
        Ground truth of each problem, shape ``image_shape`` (a stacked tensor
        ``(n_problems, *image_shape)`` is accepted too).
    level : float
        Target coverage in (0, 1).
    metadata : dict, optional
        Stored with the calibration (e.g. solver, steps, problem description).

    Returns
    -------
    Calibration
        With ``scale = q``, the ``ceil((n+1) level)``-th smallest conformity score of the
        ``n`` calibration pixels.  ``ValueError`` if ``n`` is too small for the level
        (``ceil((n+1) level) > n``).
    """
    level = _check_level(level)
    if isinstance(posteriors, Posterior):
        posteriors = [posteriors]
        truths = [truths]
    posteriors = list(posteriors)
    truths = list(truths)
    if not posteriors:
        raise ValueError("posteriors: expected at least one Posterior")
    if len(truths) != len(posteriors):
        raise ValueError(
            f"truths: expected one truth per posterior ({len(posteriors)}), got {len(truths)}"
        )
    scores = []
    for p, x in zip(posteriors, truths):
        if not isinstance(p, Posterior):
            raise ValueError(f"posteriors: expected Posterior objects, got {type(p).__name__}")
        scores.append(conformity_scores(p, x, level))
    all_scores = torch.cat(scores)
    n = all_scores.numel()
    k = math.ceil((n + 1) * level)
    if k > n:
        raise ValueError(
            f"posteriors: {n} calibration pixels are too few for level {level}; need at least "
            f"{math.ceil(level / (1 - level))}"
        )
    q = float(torch.sort(all_scores).values[k - 1])
    if not math.isfinite(q):
        raise ValueError(
            "posteriors: the conformal quantile is infinite (zero-width intervals missing the "
            "truth); the posteriors have too little spread to be rescaled"
        )
    before = float((all_scores <= 1.0).to(torch.float64).mean())
    return Calibration(level=level, scale=q, n_scores=n, empirical_before=before,
                       metadata=dict(metadata or {}))
