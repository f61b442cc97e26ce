"""Choose a run's thread count by timing one of its steps (:func:`diffinv.threads.fastest_count`).

Whether intra-op threads pay depends on the run, not only on the machine: a small network on
32x32 images runs many short torch operators whose threading overhead exceeds the work, while
a 128x128 multi-coil problem gains from every core.  :func:`choose_run_threads` times the
step every solver repeats, a prior (denoiser) call on the batch of chains plus the gradient
of the log-likelihood, at 1 thread and at the policy's count, and keeps the larger count only
when it is at least 25 % faster (:data:`RUN_MARGIN`).  It costs a few denoiser calls.
"""

from __future__ import annotations

import torch

from .operators.problem import InverseProblem
from .threads import default_threads, fastest_count, get_threads, requested_threads, set_threads

__all__ = ["RUN_MARGIN", "run_step", "choose_run_threads", "settle_run_threads"]

#: More threads are kept only when the timed step is at least 25 % faster with them: a whole
#: run has serial parts the step does not show (measured on the default ``reconstruct`` run,
#: idle 2-core machine: the step was 22 % faster at 2 threads, the whole run 1-thread
#: 14.2-14.9 s against 2 threads 13.7-15.7 s).
RUN_MARGIN = 0.75


def run_step(problem: InverseProblem, prior, n_samples: int, dtype: torch.dtype = torch.float32):
    """A callable doing one representative sampler step of a run.

    Parameters
    ----------
    problem : InverseProblem
        The problem to be sampled (``image_shape`` must be known).
    prior : callable
        Denoiser ``prior(x, sigma)`` with ``x`` of shape ``(n_samples, *image_shape)``.
    n_samples : int
        Chains sampled side by side (the batch of every call).
    dtype : torch.dtype
        The run's dtype.

    Returns
    -------
    callable
        No arguments: one denoiser call at a mid-range noise level and one
        log-likelihood gradient, both on the batch of chains.
    """
    if problem.image_shape is None:
        raise ValueError("problem: image_shape is unknown; cannot time a step of the run")
    gen = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn((n_samples, *problem.image_shape), generator=gen, dtype=dtype)
    sigma = torch.full((n_samples,), 0.5, dtype=dtype)

    def step() -> None:
        with torch.no_grad():
            prior(x, sigma)
        problem.grad_log_likelihood(x)

    return step


def choose_run_threads(
    problem: InverseProblem,
    prior,
    n_samples: int,
    dtype: torch.dtype = torch.float32,
    max_threads: int | None = None,
) -> tuple[int, dict[int, float]]:
    """Time a step of the run at 1 and ``max_threads`` threads; apply and return the faster.

    ``max_threads`` defaults to :func:`diffinv.threads.default_threads`.  Returns the count
    applied (with :func:`diffinv.threads.set_threads`) and the timings in seconds.
    """
    n = default_threads() if max_threads is None else int(max_threads)
    if n <= 1:
        return set_threads(1), {}
    chosen, times = fastest_count(run_step(problem, prior, n_samples, dtype), (1, n),
                                  margin=RUN_MARGIN)
    return set_threads(chosen), times


def settle_run_threads(
    requested: int | None,
    problem: InverseProblem,
    prior,
    n_samples: int,
    dtype: torch.dtype = torch.float32,
) -> tuple[int, str]:
    """The CLI's final thread count for a run, and how it was chosen (for the log).

    ``requested`` is the ``--threads`` value (``None`` for auto).  An explicit count (the
    option or ``DIFFINV_NUM_THREADS``) is kept as applied; otherwise the step is timed
    (:func:`choose_run_threads`).
    """
    if requested is not None or requested_threads() is not None:
        return get_threads(), "as requested"
    n, times = choose_run_threads(problem, prior, n_samples, dtype)
    if not times:
        return n, "1 core free"
    timed = ", ".join(f"{c} thread{'s' if c > 1 else ''} {t * 1e3:.1f} ms"
                      for c, t in sorted(times.items()))
    return n, f"timed one step: {timed}"
