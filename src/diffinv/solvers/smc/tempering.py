r"""Adaptive tempering of the likelihood for SMC: the next exponent by bisection on the CESS.

A tempered SMC targets ``gamma_lambda(x) = p(x) L(x)^lambda`` with ``0 <= lambda <= 1`` rising
to one.  Moving from ``lambda`` to ``lambda'`` multiplies the weights by
``G_i = L(x_i)^(lambda' - lambda)``; its *conditional effective sample size* (Zhou, Johansen &
Aston 2016, "Toward automatic model comparison: an adaptive sequential Monte Carlo approach",
JCGS 25(3))

.. math:: \mathrm{CESS} = \frac{\big(\sum_i W_i G_i\big)^2}{\sum_i W_i G_i^2}\in (0, 1]

(a fraction of the particles, ``W`` the current normalised weights) measures how much of the
current particle system the increment keeps, whatever the weights were before.  The next
exponent is the largest ``lambda'`` whose CESS is at least the target fraction
(:func:`next_exponent`, bisection; Jasra et al. 2011 for the same rule on the plain ESS), so
that each increment loses a set fraction of the effective particles and the path of exponents
adapts to the sharpness of the likelihood.  Choosing the path from the particles makes the
log-evidence estimate slightly biased for finite particle numbers; it stays consistent
(Beskos, Jasra, Kantas & Thiery 2016, "On the convergence of adaptive sequential Monte Carlo
methods", AAP 26(2)).
"""

from __future__ import annotations

import math

import torch

__all__ = ["conditional_ess", "next_exponent"]

BISECTION_STEPS = 40  # halvings (golden-section steps) of the bracket: 1e-8 or finer


def conditional_ess(log_w: torch.Tensor, log_g: torch.Tensor) -> float:
    """CESS fraction of the increment ``exp(log_g)`` ``(n,)`` under log-weights ``log_w`` ``(n,)``.

    Both float64; ``-inf`` entries (zero weight or zero increment) are allowed.  Returns a
    number in ``(0, 1]``; 0 only when every increment is zero on the particles with weight.
    """
    lw = torch.log_softmax(log_w.to(torch.float64), 0)
    g = log_g.to(torch.float64)
    first = torch.logsumexp(lw + g, 0)
    second = torch.logsumexp(lw + 2.0 * g, 0)
    if not bool(torch.isfinite(first)) or not bool(torch.isfinite(second)):
        return 0.0
    return float(torch.exp(2.0 * first - second).clamp(max=1.0))


def next_exponent(
    log_w_runs: list[torch.Tensor],
    log_lik: torch.Tensor,
    target: float,
    *,
    base: torch.Tensor | None = None,
    low: float = 0.0,
    scale: float = 1.0,
) -> float:
    """The next exponent ``lambda`` in ``[low, 1]``: the largest whose increment keeps the CESS.

    The increment's log-weight is ``base + lambda * scale * log_lik``.  With
    ``base = -low * scale * log_lik`` this is classic tempering from ``low`` (the CESS is one
    at ``lambda = low`` and falls as ``lambda`` grows); with a ``base`` that carries other
    terms of the step (a proposal's weight and the previous twist), the exponent that
    best keeps the particles may lie inside the interval, and so may the answer.

    Parameters
    ----------
    log_w_runs : list of torch.Tensor
        Float64 log-weights ``(n,)`` of each independent run (one entry for a single run);
        the particles of run ``k`` are the rows ``k n .. (k + 1) n - 1`` of ``log_lik``.
    log_lik : torch.Tensor
        ``(runs * n,)`` log-likelihood (or twist) values of the particles.
    target : float
        CESS fraction to keep, in (0, 1); the smallest CESS over the runs is used.
    base : torch.Tensor, optional
        ``(runs * n,)`` float64 part of the increment that does not depend on ``lambda``
        (default zero).
    low : float
        Smallest exponent allowed, in [0, 1].
    scale : float
        Positive factor in front of ``log_lik`` (e.g. a twist's variance inflation).

    Returns
    -------
    float
        ``1.0`` when it keeps the target; else the largest exponent above the one with the
        highest CESS that keeps the target, or that exponent when none does (golden-section
        search, then bisection; the CESS is taken to be unimodal in ``lambda``).
    """
    n = log_w_runs[0].numel()
    ll = scale * log_lik.detach().to(torch.float64).reshape(len(log_w_runs), n)
    ll = torch.where(torch.isnan(ll), torch.full_like(ll, -torch.inf), ll)
    b = (torch.zeros_like(ll) if base is None
         else base.detach().to(torch.float64).reshape(len(log_w_runs), n))

    lw = torch.log_softmax(torch.stack([w.to(torch.float64) for w in log_w_runs]), 1)

    def worst(lam: float) -> float:
        inc = b + torch.where(ll == -torch.inf, ll, lam * ll)
        first = torch.logsumexp(lw + inc, 1)
        cess = torch.exp(2.0 * first - torch.logsumexp(lw + 2.0 * inc, 1))
        return float(torch.nan_to_num(cess, nan=0.0).clamp(max=1.0).min())

    if low >= 1.0 or worst(1.0) >= target:
        return 1.0
    peak = _golden_max(worst, low, 1.0)
    if worst(peak) < target:
        return peak
    lo, hi = peak, 1.0
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if worst(mid) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def _golden_max(f, lo: float, hi: float) -> float:
    """Maximiser of a unimodal ``f`` on ``[lo, hi]`` by golden-section search (ends
    included)."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(BISECTION_STEPS):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    best = max((f(lo), lo), (fc, c), (f(hi), hi))
    return best[1]
