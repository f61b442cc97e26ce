r"""One thread policy for torch, numba and finufft: more cores must never mean slower.

Every compute library diffinv uses runs its own thread pool (torch/OpenMP, numba's
``prange``, finufft's OpenMP).  Left at their defaults they each start one thread per logical
CPU, and on a shared node, or when two pools are active at once, the threads fight for the
same cores, and a run can become many times slower than with one thread (measurements in
``benchmarks/README.md``, "Thread policy").  This module is the one place
that decides the count.

The rule (:func:`default_threads`)
----------------------------------
1. ``DIFFINV_NUM_THREADS`` (a positive integer, or ``auto``) overrides everything; the CLI's
   ``--threads N`` overrides the environment variable.
2. Otherwise the count is the number of *physical* cores this process may run on
   (``os.sched_getaffinity`` intersected with the core topology: hyper-threads share one
   core's floating-point units and add nothing to these kernels; capped by a cgroup CPU
   quota, as containers and batch schedulers set) **minus the other processes
   running right now** (the run-queue length of ``/proc/loadavg``, less this process), and at
   least 1.  So an idle 16-core node gets 16, a 2-core machine with another CPU-bound job
   gets 1, and a machine whose cores are all busy gets 1 (never oversubscribed).
3. Measured rule for a whole run (:func:`fastest_count`): the CLI, when no count was
   requested, times one representative step of the run (a denoiser call on the batch of
   chains plus the likelihood gradient, :mod:`diffinv.thread_probe`) at 1 thread and at the
   rule's count, interleaved, and keeps the larger count only if it is clearly faster.  Small
   networks on small images run many short torch operators whose intra-op threading costs
   more than it gains; only a measurement sees that.
4. Work-size rule (:func:`threads_for`): operators call ``threads_for(work)`` with an
   estimate of their floating-point work; below :data:`MIN_WORK_PER_THREAD` per thread they
   run serial kernels (numba ``parallel=False``, finufft ``nthreads=1``), because waking a
   thread pool costs more than the work, badly so on a busy machine.  torch calls on small
   work (the sparse CT matrices of small images, ...) run inside :func:`work_threads`, which
   lowers torch's intra-op count by the same rule for the duration of the call.
5. Workers of a study (processes run side by side) each get
   ``max(1, default_threads() // n_workers)`` (:func:`per_worker`).

:func:`set_threads` applies a count to torch and numba (finufft reads it per call through
:func:`threads_for`); :func:`thread_limit` does the same inside a ``with`` block and
restores the previous counts; :func:`apply_policy` applies the rule above once (the CLI calls
it before any work).  The Python API leaves the libraries' settings alone unless you call one
of these.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence

import torch

__all__ = [
    "ENV_VAR",
    "MIN_WORK_PER_THREAD",
    "parse_threads",
    "usable_cores",
    "busy_processes",
    "default_threads",
    "requested_threads",
    "set_threads",
    "get_threads",
    "thread_limit",
    "apply_policy",
    "threads_for",
    "work_threads",
    "per_worker",
    "fastest_count",
]

ENV_VAR = "DIFFINV_NUM_THREADS"

#: Floating-point work (multiply-adds, roughly) that one extra thread must get before it pays
#: for itself.  Waking an OpenMP/numba pool costs tens of microseconds idle and
#: milliseconds when the cores are contended; 1e6 multiply-adds take about 1 ms.
MIN_WORK_PER_THREAD = 1_000_000


def parse_threads(value: object, source: str = ENV_VAR) -> int | None:
    """Validate a thread count; ``None`` for ``"auto"``/``""``/``None`` (use the rule).

    Parameters
    ----------
    value : int, str or None
        A positive integer (or its decimal string), or ``"auto"``.
    source : str
        Where the value came from, named in the error (``DIFFINV_NUM_THREADS``,
        ``--threads``, ...).

    Raises
    ------
    ValueError
        Naming ``source`` and the value when it is not a positive integer or ``auto``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{source}: expected a positive integer or 'auto', got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "auto"):
            return None
        try:
            n = int(text, 10)
        except ValueError:
            raise ValueError(
                f"{source}: expected a positive integer or 'auto', got {value!r}"
            ) from None
    else:
        raise ValueError(f"{source}: expected a positive integer or 'auto', got {value!r}")
    if n < 1:
        raise ValueError(f"{source}: expected a positive integer or 'auto', got {value!r}")
    return n


def _physical_core_ids() -> dict[int, tuple[str, str]]:
    """Logical CPU -> (package, core) from ``/proc/cpuinfo``; empty when unreadable."""
    ids: dict[int, tuple[str, str]] = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            cpu, pkg = None, "0"
            for line in fh:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "processor":
                    cpu, pkg = int(val), "0"
                elif key == "physical id":
                    pkg = val
                elif key == "core id" and cpu is not None:
                    ids[cpu] = (pkg, val)
    except (OSError, ValueError):
        return {}
    return ids


def _cgroup_cpu_limit() -> int | None:
    """CPUs allowed by a cgroup quota (containers, batch schedulers), ``None`` if unlimited."""
    for path, parse in (
        ("/sys/fs/cgroup/cpu.max", lambda t: t.split()[:2]),  # cgroup v2: "quota period"
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", None),  # cgroup v1
    ):
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read().strip()
            if parse is not None:
                quota, period = parse(text)
            else:
                quota = text
                with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us", encoding="ascii") as fh:
                    period = fh.read().strip()
            if quota in ("max", "-1"):
                return None
            return max(1, -(-int(quota) // int(period)))  # ceil
        except (OSError, ValueError):
            continue
    return None


def usable_cores() -> int:
    """Physical cores this process may run on (at least 1): the CPU affinity mask, counted
    by physical core, capped by a cgroup CPU quota."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
    topo = _physical_core_ids()
    if topo and cpus <= set(topo):
        n = len({topo[c] for c in cpus})
    else:
        n = len(cpus)
    limit = _cgroup_cpu_limit()
    return max(1, n if limit is None else min(n, limit))


def busy_processes() -> int:
    """Runnable tasks on the machine other than this one, right now (``/proc/loadavg``).

    The fourth field of ``/proc/loadavg`` counts runnable threads at the instant of reading,
    including the reader.  The median of five reads 2 ms apart filters both short spikes
    (a process that wakes for a moment) and short dips (a busy process throttled by a cgroup
    CPU quota leaves the run queue for a moment; the minimum of three back-to-back reads
    missed one so).  0 when the file is missing (not Linux).
    """
    counts = []
    for i in range(5):
        if i:
            time.sleep(0.002)
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = fh.read().split()[3].split("/")[0]
            counts.append(int(running))
        except (OSError, IndexError, ValueError):
            return 0
    return max(0, sorted(counts)[2] - 1)


def requested_threads() -> int | None:
    """The count set by ``DIFFINV_NUM_THREADS`` (validated), or ``None`` when unset/auto."""
    return parse_threads(os.environ.get(ENV_VAR), ENV_VAR)


def default_threads() -> int:
    """The policy's count: ``DIFFINV_NUM_THREADS``, else idle physical cores (>= 1)."""
    requested = requested_threads()
    if requested is not None:
        return requested
    return max(1, usable_cores() - busy_processes())


def _numba():
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        return None
    return numba


def set_threads(n: int) -> int:
    """Use ``n`` threads in torch (intra-op) and numba; returns the count applied.

    numba cannot exceed the pool it started with (``NUMBA_NUM_THREADS``, fixed at import), so
    its count is clamped to that; torch gets ``n``.  finufft calls take the count per call
    from :func:`threads_for`.
    """
    n = parse_threads(n, "threads")
    if n is None:
        n = default_threads()
    torch.set_num_threads(n)
    nb = _numba()
    if nb is not None:
        nb.set_num_threads(min(n, nb.config.NUMBA_NUM_THREADS))
    return n


def get_threads() -> int:
    """Threads torch uses now (the count operators scale their pools to)."""
    return torch.get_num_threads()


@contextlib.contextmanager
def thread_limit(n: int | None = None) -> Iterator[int]:
    """Run a block with ``n`` threads (default: :func:`default_threads`), then restore.

    Example
    -------
    >>> with thread_limit(1):
    ...     post = diffinv.sample(problem, prior, solver="daps")  # doctest: +SKIP
    """
    nb = _numba()
    old_torch = torch.get_num_threads()
    old_numba = nb.get_num_threads() if nb is not None else None
    applied = set_threads(default_threads() if n is None else n)
    try:
        yield applied
    finally:
        torch.set_num_threads(old_torch)
        if nb is not None and old_numba is not None:
            nb.set_num_threads(old_numba)


def apply_policy(n: int | str | None = None, source: str = "--threads") -> int:
    """Apply ``n`` (validated, named ``source`` in errors) or the default rule; returns it."""
    requested = parse_threads(n, source)
    return set_threads(default_threads() if requested is None else requested)


def threads_for(work: float, max_threads: int | None = None) -> int:
    """Threads worth using for ``work`` multiply-adds: 1 for small work, else up to the
    current count (:func:`get_threads`), one per :data:`MIN_WORK_PER_THREAD`."""
    cap = get_threads() if max_threads is None else max(1, int(max_threads))
    return int(max(1, min(cap, work // MIN_WORK_PER_THREAD)))


@contextlib.contextmanager
def work_threads(work: float) -> Iterator[int]:
    """Run a block of torch work of ``work`` multiply-adds on :func:`threads_for` threads.

    The torch intra-op count is only ever lowered (to 1 for small work), and restored on
    exit; setting it costs well under a microsecond.

    Example
    -------
    >>> with work_threads(A._nnz() * batch):  # doctest: +SKIP
    ...     out = torch.sparse.mm(A, x)
    """
    current = torch.get_num_threads()
    n = threads_for(work, current)
    if n >= current:
        yield current
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(current)


def per_worker(n_workers: int) -> int:
    """Threads for each of ``n_workers`` processes sharing this machine (at least 1)."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers: expected a positive int, got {n_workers!r}")
    return max(1, default_threads() // n_workers)


def fastest_count(
    fn: Callable[[], object],
    counts: Sequence[int],
    repeats: int = 3,
    margin: float = 0.9,
) -> tuple[int, dict[int, float]]:
    """The thread count (of ``counts``) under which ``fn`` runs fastest, and the timings.

    Each count is applied with :func:`set_threads` and ``fn`` is run once to warm up (pools
    resize) and then timed; the counts take turns for ``repeats`` rounds and the minimum per
    count is kept.  A larger count is preferred over a smaller one only when its time is
    below ``margin`` times the smaller one's, so noise never buys threads that do not pay.
    The thread counts in effect before the call are restored.

    Parameters
    ----------
    fn : callable
        The work to time (no arguments; its result is discarded).
    counts : sequence of int
        Candidate positive thread counts.
    repeats : int
        Rounds of timing (>= 1).
    margin : float
        In (0, 1]: the speed-up a larger count must show.

    Returns
    -------
    (int, dict)
        The chosen count, and ``{count: best seconds}``.
    """
    candidates = sorted({int(parse_threads(c, "counts")) for c in counts})
    if not candidates:
        raise ValueError("counts: expected at least one positive thread count")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: expected a positive int, got {repeats!r}")
    if not 0.0 < float(margin) <= 1.0:
        raise ValueError(f"margin: expected a number in (0, 1], got {margin!r}")
    best = {c: float("inf") for c in candidates}
    with thread_limit(candidates[0]):  # restores the counts in effect before the call
        for _ in range(repeats):
            for c in candidates:
                set_threads(c)
                fn()
                t = time.perf_counter()
                fn()
                best[c] = min(best[c], time.perf_counter() - t)
    chosen = candidates[0]
    for c in candidates[1:]:
        if best[c] < margin * best[chosen]:
            chosen = c
    return chosen, best
