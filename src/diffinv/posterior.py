"""Posterior: samples (optionally weighted) with summaries, uncertainty and diagnostics."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io import FileFormatError, atomic_write, jsonable, reader

__all__ = ["INTERVAL_KINDS", "Posterior", "load_posterior", "weighted_quantile"]

#: How :meth:`Posterior.interval` forms a central interval (see there).
INTERVAL_KINDS = ("quantile", "prediction")

_FORMAT = "diffinv.posterior/1"


def weighted_quantile(
    samples: torch.Tensor, weights: torch.Tensor | None, q: float
) -> torch.Tensor:
    """Pixelwise quantile ``q`` of samples ``(n, ...)`` with optional weights ``(n,)``.

    Unweighted quantiles interpolate linearly (as :func:`torch.quantile`); weighted ones use
    the inverse of the weighted empirical CDF with midpoint positions
    ``(cumsum(w) - w/2)``, which reduces to the same interpolation for equal weights.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q: expected a probability in [0, 1], got {q!r}")
    if weights is None:
        return torch.quantile(samples.to(torch.float64), q, dim=0).to(samples.dtype)
    n = samples.shape[0]
    flat = samples.reshape(n, -1).to(torch.float64)
    vals, idx = torch.sort(flat, dim=0)
    w = weights.to(torch.float64)[idx]
    cum = torch.cumsum(w, dim=0)
    pos = (cum - 0.5 * w) / cum[-1:]
    # per-pixel linear interpolation of q in (pos, vals)
    targets = torch.full((flat.shape[1], 1), q, dtype=torch.float64)
    k = torch.searchsorted(pos.T.contiguous(), targets)
    k = k[:, 0].clamp(1, n - 1)
    cols = torch.arange(flat.shape[1])
    p0, p1 = pos[k - 1, cols], pos[k, cols]
    v0, v1 = vals[k - 1, cols], vals[k, cols]
    t = ((q - p0) / (p1 - p0).clamp(min=1e-300)).clamp(0.0, 1.0)
    out = v0 + t * (v1 - v0)
    return out.reshape(samples.shape[1:]).to(samples.dtype)


class Posterior:
    """Posterior samples with pixelwise summaries and run diagnostics.

    Parameters
    ----------
    samples : torch.Tensor
        ``(n, *image_shape)`` draws (moved to CPU and detached).
    weights : torch.Tensor, optional
        ``(n,)`` non-negative importance weights (e.g. SMC particles); normalised here.
    diagnostics : dict, optional
        Run facts: ``nfe`` (denoiser evaluations), ``wall_seconds``, ``reduced_chi2`` and
        solver-specific entries.  Values must be JSON-serialisable (numbers, strings, lists).
    metadata : dict, optional
        Free-form description (solver name, options, units, field of view).
    """

    def __init__(
        self,
        samples: torch.Tensor,
        weights: torch.Tensor | None = None,
        diagnostics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        if not isinstance(samples, torch.Tensor) or samples.ndim < 1 or samples.shape[0] < 1:
            raise ValueError("samples: expected a tensor of shape (n, *image_shape) with n >= 1")
        self.samples = samples.detach().cpu()
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64).detach().cpu().reshape(-1)
            if weights.shape[0] != samples.shape[0]:
                raise ValueError(
                    f"weights: expected {samples.shape[0]} weights (one per sample), "
                    f"got {weights.shape[0]}"
                )
            if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
                raise ValueError("weights: expected finite non-negative values")
            if float(weights.sum()) <= 0:
                raise ValueError("weights: expected a positive sum")
            weights = weights / weights.sum()
        self.weights = weights
        self.diagnostics = dict(diagnostics or {})
        self.metadata = dict(metadata or {})

    # -- summaries ---------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return self.samples.shape[0]

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.samples.shape[1:])

    def _w(self) -> torch.Tensor:
        n = self.n_samples
        w = self.weights
        if w is None:
            w = torch.full((n,), 1.0 / n, dtype=torch.float64)
        return w.reshape((n,) + (1,) * (self.samples.ndim - 1))

    @property
    def mean(self) -> torch.Tensor:
        """Posterior mean (weighted when weights are given), shape ``image_shape``."""
        s = self.samples
        w = self._w().to(s.real.dtype if s.is_complex() else s.dtype)
        return (w * s).sum(0)

    @property
    def std(self) -> torch.Tensor:
        """Pixelwise posterior standard deviation (``|x - mean|`` for complex samples).

        Unweighted samples use the unbiased ``n - 1`` estimator; weighted ones the
        reliability-weights correction ``1 / (1 - sum w^2)``.
        """
        return self._std_about(self.mean)

    def _std_about(self, mean: torch.Tensor) -> torch.Tensor:
        """:attr:`std` given the already computed :attr:`mean`."""
        s = self.samples
        n = self.n_samples
        if n < 2:
            return torch.zeros(self.image_shape, dtype=s.real.dtype if s.is_complex() else s.dtype)
        w = self._w().to(s.real.dtype if s.is_complex() else s.dtype)
        var = (w * (s - mean).abs() ** 2).sum(0)
        correction = 1.0 - float((w.reshape(-1) ** 2).sum())
        return torch.sqrt(var / max(correction, 1e-12))

    @property
    def ess(self) -> float:
        """Effective sample size ``1 / sum w^2`` (``n`` for unweighted samples)."""
        if self.weights is None:
            return float(self.n_samples)
        return float(1.0 / (self.weights**2).sum())

    def interval(self, level: float = 0.9, kind: str = "quantile"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Central pixelwise interval ``(lower, upper)`` at probability ``level``.

        Parameters
        ----------
        level : float
            Nominal probability in (0, 1).
        kind : {"quantile", "prediction"}
            ``"quantile"``: the (weighted) empirical quantiles ``(1 -+ level) / 2`` of the
            samples, the credible interval of the sample itself.  With few samples it covers
            a new draw from the same posterior less often than ``level`` (``n`` exact iid
            samples: about ``(n - 1) / (n + 1)`` at most, 0.88 for 16).
            ``"prediction"``: the normal prediction interval for one more draw given the
            samples (Hahn & Meeker 1991, *Statistical Intervals*, sec. 4.7; Geisser 1993),
            ``mean +- t_{n-1}((1 + level) / 2) std sqrt(1 + 1/n)`` with ``n`` the effective
            sample size :attr:`ess` and ``std`` the unbiased :attr:`std`: exactly ``level``
            for iid samples of a Gaussian posterior, whatever ``n``.  For a truth drawn from
            the posterior this is the interval that covers it at the stated rate.

        Returns
        -------
        lower, upper : torch.Tensor
            ``image_shape``, the samples' dtype.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level: expected a probability in (0, 1), got {level!r}")
        if kind not in INTERVAL_KINDS:
            raise ValueError(f"kind: expected one of {INTERVAL_KINDS}, got {kind!r}")
        if self.samples.is_complex():
            raise ValueError("samples: intervals are defined for real images; take .real/.abs()")
        if kind == "prediction":
            from scipy.stats import t as student_t

            n = self.ess
            if not n > 1.0 + 1e-9:
                raise ValueError(
                    f"kind: 'prediction' needs an effective sample size above 1, got {n:.3g} "
                    f"({self.n_samples} samples)"
                )
            q = float(student_t.ppf(0.5 + 0.5 * level, df=n - 1.0))
            mean = self.mean
            half = q * math.sqrt(1.0 + 1.0 / n) * self._std_about(mean)
            return mean - half, mean + half
        a = 0.5 * (1.0 - level)
        return (
            weighted_quantile(self.samples, self.weights, a),
            weighted_quantile(self.samples, self.weights, 1.0 - a),
        )

    def coverage(self, x_true: torch.Tensor, level: float = 0.9, kind: str = "quantile"
                 ) -> float:
        """Fraction of pixels of ``x_true`` inside the central ``level`` interval of ``kind``
        (:meth:`interval`)."""
        x_true = torch.as_tensor(x_true).detach().cpu()
        if x_true.shape != self.samples.shape[1:]:
            if x_true.ndim == self.samples.ndim and x_true.shape[0] == 1:
                x_true = x_true[0]
            if x_true.shape != self.samples.shape[1:]:
                raise ValueError(
                    f"x_true: expected shape {self.image_shape}, got {tuple(x_true.shape)}"
                )
        lo, hi = self.interval(level, kind)
        inside = (x_true >= lo) & (x_true <= hi)
        return float(inside.to(torch.float64).mean())

    def calibration_curve(
        self, x_true: torch.Tensor, levels: Any = None, kind: str = "quantile"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Empirical against nominal coverage of the central credible intervals.

        Parameters
        ----------
        x_true : torch.Tensor
            Ground truth of shape ``image_shape`` (or ``(1, *image_shape)``).
        levels : sequence of float, optional
            Nominal probabilities in (0, 1); default ``0.05, 0.10, ..., 0.95``.
        kind : {"quantile", "prediction"}
            The intervals' kind (:meth:`interval`).

        Returns
        -------
        nominal, empirical : torch.Tensor
            float64 tensors of the same length: the levels and the fraction of pixels of
            ``x_true`` inside the corresponding interval.  A calibrated posterior lies on the
            diagonal (within binomial error, pixels being correlated).
        """
        if levels is None:
            nominal = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
        else:
            nominal = torch.as_tensor(levels, dtype=torch.float64).reshape(-1)
            if nominal.numel() == 0:
                raise ValueError("levels: expected at least one probability")
            if bool(((nominal <= 0) | (nominal >= 1)).any()) or not bool(
                torch.isfinite(nominal).all()
            ):
                raise ValueError("levels: expected probabilities strictly between 0 and 1")
        empirical = torch.tensor(
            [self.coverage(x_true, float(lv), kind) for lv in nominal], dtype=torch.float64
        )
        return nominal, empirical

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write samples, weights, mean, std and diagnostics to HDF5, atomically.

        Layout: datasets ``samples``, ``mean``, ``std`` (and ``weights``); attributes
        ``format``, ``diagnostics`` and ``metadata`` (JSON strings).
        """
        import h5py

        def write(tmp: str) -> None:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = _FORMAT
                f.attrs["diagnostics"] = json.dumps(jsonable(self.diagnostics))
                f.attrs["metadata"] = json.dumps(jsonable(self.metadata))
                f.create_dataset("samples", data=self.samples.numpy(), compression="gzip")
                f.create_dataset("mean", data=self.mean.numpy())
                f.create_dataset("std", data=self.std.numpy())
                if self.weights is not None:
                    f.create_dataset("weights", data=self.weights.numpy())

        return atomic_write(path, write, suffix=".h5.tmp")

    def __repr__(self) -> str:
        return (
            f"Posterior(n_samples={self.n_samples}, image_shape={self.image_shape}, "
            f"weighted={self.weights is not None})"
        )


@reader("diffinv posterior HDF5")
def load_posterior(path: str | os.PathLike) -> Posterior:
    """Read a :class:`Posterior` written by :meth:`Posterior.save`.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    diffinv.io.FileFormatError
        (a ``ValueError``) naming the file when it is empty, truncated, damaged, not a
        posterior file, or holds NaN/Inf samples or weights.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no posterior file at {str(path)!r}")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != _FORMAT:
            raise FileFormatError(f"path: {str(path)!r} is not a diffinv posterior file")
        samples = torch.from_numpy(np.asarray(f["samples"]))
        weights = torch.from_numpy(np.asarray(f["weights"])) if "weights" in f else None
        diagnostics = json.loads(f.attrs["diagnostics"])
        metadata = json.loads(f.attrs["metadata"])
    for name, values in (("samples", samples), ("weights", weights)):
        if values is not None and not bool(torch.isfinite(values).all()):
            raise FileFormatError(
                f"path: {str(path)!r} holds NaN or Inf {name}; the file is damaged or was "
                "written by a failed run"
            )
    return Posterior(samples, weights, diagnostics, metadata)
