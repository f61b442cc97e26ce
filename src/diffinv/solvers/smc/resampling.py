"""Resampling for sequential Monte Carlo: systematic, Hilbert-ordered systematic, multinomial.

Weights are handled as float64 log-weights ``(N,)`` throughout; the functions here take
normalised weights ``W`` (non-negative, summing to one) or log-weights as stated.

References
----------
Douc, Cappe & Moulines (2005), "Comparison of resampling schemes for particle filtering";
Gerber, Chopin & Whiteley (2019), "Negative association, ordering and convergence of
resampling methods" (the ``ordered`` scheme); Kong, Liu & Wong (1994) for the effective
sample size ``1 / sum W_i^2``.
"""

from __future__ import annotations

import torch

from .sqmc import hilbert_order

__all__ = [
    "RESAMPLERS",
    "effective_sample_size",
    "multinomial_resample",
    "normalise_log_weights",
    "ordered_resample",
    "resample",
    "systematic_resample",
]


def _check_weights(weights: torch.Tensor) -> torch.Tensor:
    if not isinstance(weights, torch.Tensor) or weights.ndim != 1 or weights.numel() == 0:
        raise ValueError("weights: expected a non-empty 1-D tensor of normalised weights")
    w = weights.to(torch.float64)
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("weights: expected finite non-negative values")
    total = float(w.sum())
    if total <= 0:
        raise ValueError("weights: expected a positive sum")
    return w / total


def normalise_log_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """Return normalised weights ``W = softmax(log_weights)`` in float64, shape ``(N,)``.

    Raises ``FloatingPointError`` when every log-weight is ``-inf`` or any is NaN/``+inf``
    (all particles incompatible with the data).
    """
    lw = log_weights.to(torch.float64)
    if bool(torch.isnan(lw).any()) or bool((lw == float("inf")).any()):
        raise FloatingPointError("log-weights contain NaN or +inf")
    if not bool(torch.isfinite(lw).any()):
        raise FloatingPointError("every particle has zero weight (all log-weights are -inf)")
    return torch.softmax(lw, dim=0)


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """Kish effective sample size ``1 / sum W_i^2`` of log-weights ``(N,)``; in [1, N]."""
    w = normalise_log_weights(log_weights)
    return float(1.0 / (w**2).sum())


def systematic_resample(
    weights: torch.Tensor, generator: torch.Generator | None = None, n: int | None = None
) -> torch.Tensor:
    """Systematic resampling: one uniform ``u``, points ``(u + i) / n``.

    Each index ``i`` is drawn between ``floor(n W_i)`` and ``ceil(n W_i)`` times, and the
    expected count is ``n W_i``.

    Parameters
    ----------
    weights : torch.Tensor
        ``(N,)`` non-negative weights (normalised here).
    generator : torch.Generator, optional
        Random source; its device is used for the uniform draw.
    n : int, optional
        Number of indices to draw (default ``N``).

    Returns
    -------
    torch.Tensor
        ``(n,)`` int64 ancestor indices on ``weights``' device, non-decreasing.
    """
    w = _check_weights(weights)
    n = w.numel() if n is None else int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    dev = generator.device if generator is not None else w.device
    u = torch.rand((1,), dtype=torch.float64, device=dev, generator=generator).to(w.device)
    points = (u + torch.arange(n, dtype=torch.float64, device=w.device)) / n
    cdf = torch.cumsum(w, dim=0)
    idx = torch.searchsorted(cdf, points, right=True)
    return idx.clamp(max=w.numel() - 1)


def multinomial_resample(
    weights: torch.Tensor, generator: torch.Generator | None = None, n: int | None = None
) -> torch.Tensor:
    """Multinomial resampling: ``n`` independent draws from ``Categorical(W)``.

    Parameters and return value as :func:`systematic_resample` (indices not sorted).
    """
    w = _check_weights(weights)
    n = w.numel() if n is None else int(n)
    if n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    dev = generator.device if generator is not None else w.device
    idx = torch.multinomial(w.to(dev), n, replacement=True, generator=generator)
    return idx.to(w.device)


def ordered_resample(
    weights: torch.Tensor, points: torch.Tensor, generator: torch.Generator | None = None,
    n: int | None = None,
) -> torch.Tensor:
    """Systematic resampling of the particles taken in the Hilbert order of ``points``.

    The particles ``(N, ...)`` are sorted along a Hilbert curve
    (:func:`diffinv.solvers.smc.sqmc.hilbert_order`) before :func:`systematic_resample`, so
    the count of any run of consecutive particles in that order, and hence of any region of
    space that the curve enters once, is within one of ``n`` times its total weight (not
    only the count of each particle).  Returned indices refer to the original particles and
    are non-decreasing in Hilbert rank.
    """
    w = _check_weights(weights)
    if points.shape[0] != w.numel():
        raise ValueError(f"points: expected {w.numel()} rows (one per weight), got "
                         f"{points.shape[0]}")
    order = hilbert_order(points).to(w.device)
    return order[systematic_resample(w[order], generator, n)]


RESAMPLERS = {"systematic": systematic_resample, "ordered": ordered_resample,
              "multinomial": multinomial_resample}


def resample(
    scheme: str, weights: torch.Tensor, generator: torch.Generator | None = None,
    points: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dispatch to the resampling scheme named ``scheme`` (``systematic``/``ordered``/
    ``multinomial``); ``ordered`` needs the particles' states ``points`` ``(N, ...)``."""
    try:
        fn = RESAMPLERS[scheme]
    except KeyError:
        raise ValueError(
            f"resampling: expected one of {sorted(RESAMPLERS)}, got {scheme!r}"
        ) from None
    if scheme == "ordered":
        if points is None:
            raise ValueError("points: the 'ordered' scheme needs the particles' states")
        return fn(weights, points, generator)
    return fn(weights, generator)
