"""Particle bookkeeping shared by the SMC samplers (MCGdiff, TDS).

* :class:`ParticleWeights` keeps float64 log-weights, the running log marginal-likelihood
  estimate, ESS per step, the adaptive resampling rule and the ESS-collapse warning.
* :func:`gather` indexes particle tensors by resampled ancestors.
* :func:`denoise` calls the prior in chunks of ``max_batch`` particles (bounding peak memory),
  optionally differentiating a function of the denoised estimate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator

import torch

from .resampling import effective_sample_size, normalise_log_weights, resample

__all__ = ["ParticleWeights", "RunWeights", "denoise", "denoiser_batches", "gather",
           "log_normal"]


class ParticleWeights:
    """Float64 log-weights of ``n`` particles with adaptive resampling and diagnostics.

    The log marginal-likelihood estimate is the standard SMC one,
    ``log Z = sum_k log sum_i W_i^{(k-1)} G_i^{(k)}`` with ``W`` the normalised weights
    before step ``k`` and ``G`` the incremental weights; it is unbiased for ``Z`` (not for
    ``log Z``).

    Parameters
    ----------
    n : int
        Number of particles.
    device : torch.device
        Device of the log-weights.
    scheme : {"systematic", "ordered", "multinomial"}
        Resampling scheme (:mod:`diffinv.solvers.smc.resampling`).
    ess_threshold : float
        Resample when ``ESS / n < ess_threshold`` (0: never, 1: every step).
    generator : torch.Generator
        Random source for resampling.
    collapse_fraction, collapse_steps : float, int
        Warn (``RuntimeWarning``) once when ``ESS / n`` stays below ``collapse_fraction`` for
        ``collapse_steps`` consecutive steps.
    """

    n_runs = 1

    def __init__(
        self,
        n: int,
        device: torch.device,
        scheme: str,
        ess_threshold: float,
        generator: torch.Generator | None,
        collapse_fraction: float = 0.05,
        collapse_steps: int = 10,
    ):
        self.n = n
        self.log_w = torch.zeros(n, dtype=torch.float64, device=device)
        self.log_evidence = 0.0
        self.scheme = scheme
        self.ess_threshold = ess_threshold
        self.generator = generator
        self.collapse_fraction = collapse_fraction
        self.collapse_steps = collapse_steps
        self.ess_history: list[float] = []
        self.resampled_at: list[int] = []
        self.unique_ancestors: list[int] = []
        self._low_run = 0
        self._warned = False

    def reweight(self, log_increment: torch.Tensor, step: int) -> None:
        """Multiply the weights by ``exp(log_increment)`` ``(n,)`` and update ``log Z``.

        Raises ``FloatingPointError`` naming ``step`` if an increment is NaN or ``+inf`` or
        every particle ends with zero weight.
        """
        inc = log_increment.detach().to(torch.float64).reshape(-1)
        if bool(torch.isnan(inc).any()) or bool((inc == float("inf")).any()):
            raise FloatingPointError(
                f"SMC incremental log-weights became NaN or +inf at step {step}"
            )
        new = self.log_w + inc
        if not bool(torch.isfinite(new).any()):
            raise FloatingPointError(
                f"SMC weights collapsed at step {step}: every particle has zero weight"
            )
        self.log_evidence += float(torch.logsumexp(new, 0) - torch.logsumexp(self.log_w, 0))
        self.log_w = new
        ess = effective_sample_size(self.log_w)
        self.ess_history.append(ess)
        if ess / self.n < self.collapse_fraction:
            self._low_run += 1
        else:
            self._low_run = 0
        if self._low_run >= self.collapse_steps and not self._warned:
            self._warned = True
            warnings.warn(
                f"SMC effective sample size stayed below {self.collapse_fraction:.0%} of the "
                f"{self.n} particles for {self.collapse_steps} consecutive steps (step {step}, "
                f"ESS {ess:.1f}); the weighted particles may not represent the posterior. Use "
                "more particles or more steps; with a prior that has a density (sample and "
                "log_prob), method='tempered' with rejuvenation moves.",
                RuntimeWarning,
                stacklevel=3,
            )

    def maybe_resample(self, step: int, points: torch.Tensor | None = None
                       ) -> torch.Tensor | None:
        """Resample when ``ESS / n < ess_threshold``; return ancestor indices or ``None``.

        ``points`` ``(n, ...)``: the particles' states, which the ``ordered`` scheme sorts
        along a Hilbert curve (ignored by the others).
        """
        ess = effective_sample_size(self.log_w)
        if self.ess_threshold < 1.0 and ess / self.n >= self.ess_threshold:
            return None  # (a threshold of 1 resamples every step, even equal weights)
        idx = resample(self.scheme, normalise_log_weights(self.log_w), self.generator,
                       points)
        self.log_w = torch.zeros_like(self.log_w)
        self.resampled_at.append(step)
        self.unique_ancestors.append(int(torch.unique(idx).numel()))
        return idx

    @property
    def weights(self) -> torch.Tensor:
        """Normalised float64 weights ``(n,)``."""
        return normalise_log_weights(self.log_w)

    @property
    def run_weights(self) -> list[torch.Tensor]:
        """The normalised weights as the only run (the :class:`RunWeights` interface)."""
        return [self.weights]

    @property
    def run_log_weights(self) -> list[torch.Tensor]:
        """The float64 log-weights ``(n,)`` as the only run."""
        return [self.log_w]

    def add_log_evidence(self, const: float) -> None:
        """Add a constant of the likelihood that the incremental weights leave out."""
        self.log_evidence += const

    def diagnostics(self) -> dict:
        """ESS per step, resampling count and steps, distinct ancestors at each resampling,
        log-evidence, final ESS."""
        return {
            "ess_per_step": list(self.ess_history),
            "n_resamples": len(self.resampled_at),
            "resampled_at": list(self.resampled_at),
            "unique_ancestors": list(self.unique_ancestors),
            "log_evidence": float(self.log_evidence),
            "ess_final": effective_sample_size(self.log_w),
            "ess_collapsed": self._warned,
        }


class RunWeights:
    """``n_runs`` independent SMC runs of ``n`` particles each, stacked in one batch.

    The particles of run ``k`` are the rows ``k n .. (k + 1) n - 1`` of the batch.  Each run
    has its own :class:`ParticleWeights` (its own weights, adaptive resampling decision,
    log-evidence and ESS history) and resampling never mixes runs, so the runs are
    statistically independent; only the random numbers come from one shared generator.  The
    interface is that of :class:`ParticleWeights` on the whole batch.

    Parameters
    ----------
    n_runs, n : int
        Number of runs and particles per run.
    device, scheme, ess_threshold, generator, collapse_fraction, collapse_steps
        As for :class:`ParticleWeights` (shared by the runs).
    """

    def __init__(self, n_runs: int, n: int, device: torch.device, scheme: str,
                 ess_threshold: float, generator: torch.Generator | None,
                 collapse_fraction: float = 0.05, collapse_steps: int = 10):
        self.n_runs, self.n = n_runs, n
        self.runs = [
            ParticleWeights(n, device, scheme, ess_threshold, generator,
                            collapse_fraction=collapse_fraction, collapse_steps=collapse_steps)
            for _ in range(n_runs)
        ]

    def reweight(self, log_increment: torch.Tensor, step: int) -> None:
        """Reweight every run with its block of ``log_increment`` ``(n_runs n,)``."""
        inc = log_increment.reshape(self.n_runs, self.n)
        for k, run in enumerate(self.runs):
            run.reweight(inc[k], step)

    def maybe_resample(self, step: int, points: torch.Tensor | None = None
                       ) -> torch.Tensor | None:
        """Resample the runs whose ESS is low; global ancestor indices ``(n_runs n,)`` or None.

        Runs that do not resample keep their own particles (identity indices); ``points``
        ``(n_runs n, ...)`` as for :meth:`ParticleWeights.maybe_resample`.
        """
        idx = [run.maybe_resample(step, None if points is None
                                  else points[k * self.n:(k + 1) * self.n])
               for k, run in enumerate(self.runs)]
        if all(i is None for i in idx):
            return None
        out = []
        for k, i in enumerate(idx):
            base = torch.arange(self.n, device=self.runs[k].log_w.device) if i is None else i
            out.append(base + k * self.n)
        return torch.cat(out)

    @property
    def weights(self) -> torch.Tensor:
        """Float64 weights ``(n_runs n,)``: normalised within each run, divided by ``n_runs``."""
        return torch.cat([run.weights for run in self.runs]) / self.n_runs

    @property
    def run_weights(self) -> list[torch.Tensor]:
        """Normalised weights ``(n,)`` of each run."""
        return [run.weights for run in self.runs]

    @property
    def run_log_weights(self) -> list[torch.Tensor]:
        """Float64 log-weights ``(n,)`` of each run."""
        return [run.log_w for run in self.runs]

    def add_log_evidence(self, const: float) -> None:
        """Add ``const`` to every run's log-evidence."""
        for run in self.runs:
            run.add_log_evidence(const)

    @property
    def ess_history(self) -> list[list[float]]:
        """Per step, the ESS of every run."""
        return [list(e) for e in zip(*(run.ess_history for run in self.runs))]

    def diagnostics(self) -> dict:
        """Per-run diagnostics: every :class:`ParticleWeights` entry becomes a list over runs.

        ``ess_collapsed`` is True when any run collapsed; ``n_runs`` is added.
        """
        per = [run.diagnostics() for run in self.runs]
        out = {key: [d[key] for d in per] for key in per[0]}
        out["ess_collapsed"] = any(out["ess_collapsed"])
        out["n_runs"] = self.n_runs
        return out


def gather(idx: torch.Tensor | None, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Index every tensor's leading dimension by ``idx`` (identity when ``idx`` is None)."""
    if idx is None:
        return tensors
    return tuple(t[idx.to(t.device)] for t in tensors)


def denoiser_batches(
    x: torch.Tensor, sigma: float, max_batch: int | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Detached chunks of ``max_batch`` particles of ``x`` (all when ``None``) and the
    matching ``(b,)`` noise-level vectors: the batches of every per-particle denoiser call."""
    n = x.shape[0]
    step = n if not max_batch else int(max_batch)
    for start in range(0, n, step):
        xc = x[start:start + step].detach()
        yield xc, torch.full((xc.shape[0],), sigma, dtype=x.dtype, device=x.device)


def denoise(
    prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma: float,
    max_batch: int | None,
    objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Denoise ``x`` ``(N, *shape)`` at noise level ``sigma`` in chunks of ``max_batch``.

    Parameters
    ----------
    prior : callable
        ``prior(x, sigma)`` denoiser.
    objective : callable, optional
        ``objective(x0) -> (N,)``; when given, its value and its gradient with respect to
        ``x`` (through the denoiser) are returned as well.

    Returns
    -------
    x0 : torch.Tensor
        Detached denoised estimates, same shape as ``x``.
    value : torch.Tensor or None
        Detached ``objective(x0)`` in float64, ``(N,)``.
    grad : torch.Tensor or None
        Gradient of ``objective`` with respect to ``x``, same shape as ``x``.
    """
    outs, vals, grads = [], [], []
    for xc, sig in denoiser_batches(x, sigma, max_batch):
        if objective is None:
            with torch.no_grad():
                outs.append(prior(xc, sig).detach())
            continue
        with torch.enable_grad():
            xg = xc.requires_grad_(True)
            x0 = prior(xg, sig)
            val = objective(x0)
            (g,) = torch.autograd.grad(val.sum(), xg)
        outs.append(x0.detach())
        vals.append(val.detach().to(torch.float64))
        grads.append(g.detach())
    x0 = torch.cat(outs)
    if objective is None:
        return x0, None, None
    return x0, torch.cat(vals), torch.cat(grads)


def log_normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension of ``log N(x; mean, var)`` (elementwise variances)."""
    return (-0.5 * (x - mean) ** 2 / var - 0.5 * torch.log(2 * math.pi * var)).sum(-1)
