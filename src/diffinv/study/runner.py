"""Run a study's tasks on Dask distributed, writing each result to the store as it finishes.

With no client and no scheduler address, :func:`run` starts a ``LocalCluster`` of worker
processes (one per core, one thread each; every task also sets ``torch.set_num_threads`` to
``threads_per_task``, 1 by default, so workers do not fight over cores).  With
``scheduler="tcp://HOST:8786"`` (or a ``client``) it uses an existing Dask deployment (SSH,
SLURM/PBS through dask-jobqueue, Kubernetes, ...): the workers need diffinv installed, the
store stays on the client's machine (see :mod:`diffinv.study.store`).

A worker that dies mid-task is replaced (by its nanny) and Dask runs the task again on a
live worker, up to ``distributed.scheduler.allowed-failures`` times (3 by default); a task
that still cannot finish, or that raises, is recorded as failed and redone by the next run.

Worker processes are spawned, so a script that calls :func:`run` without a client must do so
under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..extras import require
from .device import visible_gpus
from .spec import load_spec
from .store import Store
from .tasks import Task, expand

__all__ = ["StudyResult", "run"]


@dataclass
class StudyResult:
    """What a :func:`run` did.

    Attributes
    ----------
    store : pathlib.Path
    n_tasks : int
        Tasks in the spec.
    skipped : int
        Tasks already complete in the store (not run again).
    completed : list of str
        Ids of the tasks finished by this run.
    failed : dict of str to str
        Task id -> error of the tasks that failed in this run.
    dashboard : str or None
        The Dask dashboard address (None when nothing had to run).
    seconds : float
        Wall time of the run.
    """

    store: Path
    n_tasks: int
    skipped: int
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dashboard: str | None = None
    seconds: float = 0.0


def run(
    spec: Any,
    client: Any = None,
    *,
    out: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    threads_per_task: int = 1,
    retries: int = 0,
    progress: bool = True,
    dashboard_address: str | None = ":8787",
    verbose: bool = True,
) -> StudyResult:
    """Run every task of ``spec`` that the store at ``out`` does not hold yet.

    Parameters
    ----------
    spec : str, os.PathLike, mapping or StudySpec
        A YAML file, a mapping with the same keys, or a parsed spec
        (:mod:`diffinv.study.spec`).
    client : distributed.Client, optional
        Use this client (left open).  Excludes ``scheduler`` and ``workers``.
    out : path
        The store directory (created if missing).
    workers : int, optional
        Worker processes of the local cluster (default: ``os.cpu_count()``; for
        ``device: cuda``, the number of visible GPUs).
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.1:8786"``.
    threads_per_task : int
        torch threads inside each task.
    retries : int
        Dask retries of a task that raises (worker deaths are retried regardless).
    progress : bool
        Show a progress bar with an ETA (tqdm, on standard error).
    dashboard_address : str or None
        Dashboard of the local cluster (``None`` disables it).
    verbose : bool
        Print the dashboard address and a summary on standard error.

    Returns
    -------
    StudyResult

    Raises
    ------
    ImportError
        When ``dask[distributed]`` is missing (``pip install diffinv[study]``) and some task
        has to run.
    ValueError
        For an invalid spec (naming the key) or conflicting arguments.
    """
    t0 = time.perf_counter()
    log = sys.stderr if verbose else None
    spec = load_spec(spec)
    if out is None:
        raise ValueError("out: the store directory is required")
    if client is not None and (scheduler is not None or workers is not None):
        raise ValueError("client: give a client, or scheduler, or workers, not several")
    if scheduler is not None and workers is not None:
        raise ValueError("workers: only for the local cluster; not with scheduler")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: expected a positive integer, got {workers!r}")
    if not isinstance(threads_per_task, int) or threads_per_task < 1:
        raise ValueError(f"threads_per_task: expected a positive integer, got {threads_per_task!r}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries: expected a non-negative integer, got {retries!r}")
    tasks = expand(spec)
    store = Store.open(out, create=True)
    store.remove_partial()
    store.record_spec(spec.source, spec.name, [t.id for t in tasks])
    done = store.completed([t.id for t in tasks])
    todo = [t for t in tasks if t.id not in done]
    result = StudyResult(store.root, len(tasks), len(done))
    _say(log, f"diffinv study {spec.name!r}: {len(tasks)} tasks, {len(done)} already in "
              f"{store.root}, {len(todo)} to run")
    if todo:
        with _connect(client, scheduler, workers, spec.device, dashboard_address) as cl:
            result.dashboard = getattr(cl, "dashboard_link", None)
            _say(log, f"diffinv study: Dask dashboard at {result.dashboard}")
            _run_tasks(cl, todo, store, result, threads_per_task, retries, spec.device,
                       progress, log, len(done), len(tasks))
    result.seconds = time.perf_counter() - t0
    _say(log, f"diffinv study: {len(result.completed)} finished, {len(result.failed)} failed, "
              f"{result.skipped} skipped in {result.seconds:.1f} s; store {store.root}")
    return result


def _run_tasks(
    client: Any, todo: list[Task], store: Store, result: StudyResult, threads: int,
    retries: int, device: str, progress: bool, log: Any, n_done: int, n_total: int,
) -> None:
    distributed = require("distributed", extra="study", purpose="diffinv study")
    from tqdm.auto import tqdm

    from .execute import run_on_worker

    resources = None
    if device == "cuda":
        _check_gpu_workers(client)
        resources = {"GPU": 1}
    futures = {
        client.submit(run_on_worker, task, threads, key=f"diffinv-study-{task.id}",
                      retries=retries, resources=resources): task
        for task in todo
    }
    bar = tqdm(total=n_total, initial=n_done, unit="task", disable=not progress or log is None,
               file=log, desc="study", dynamic_ncols=True)
    try:
        for future in distributed.as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # the task raised, or its workers kept dying
                store.write_failure(task, err)
                result.failed[task.id] = f"{type(err).__name__}: {err}"
                if log is not None:
                    bar.write(f"diffinv study: task {task.id} ({task.label}) failed: {err}",
                              file=log)
            else:
                store.write(outcome)
                result.completed.append(task.id)
            future.release()
            bar.update(1)
            if result.failed:
                bar.set_postfix(failed=len(result.failed))
    finally:
        bar.close()


@contextlib.contextmanager
def _connect(
    client: Any, scheduler: str | None, workers: int | None, device: str,
    dashboard_address: str | None,
) -> Iterator[Any]:
    """The given client, a client of ``scheduler``, or a new LocalCluster's client."""
    if client is not None:
        yield client
        return
    distributed = require("distributed", extra="study", purpose="diffinv study")
    if scheduler is not None:
        with distributed.Client(scheduler) as cl:
            yield cl
        return
    kwargs: dict[str, Any] = {}
    if device == "cuda":
        n_gpus = visible_gpus()
        if n_gpus == 0:
            raise RuntimeError("device: the spec asks for cuda but no GPU is visible here "
                               f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})")
        n = workers or n_gpus
        kwargs["resources"] = {"GPU": 1}
    else:
        n = workers or os.cpu_count() or 1
    with distributed.LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True,
        dashboard_address=dashboard_address, **kwargs,
    ) as cluster, distributed.Client(cluster) as cl:
        yield cl


def _check_gpu_workers(client: Any) -> None:
    workers = client.scheduler_info().get("workers", {})
    if not any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values()):
        raise RuntimeError(
            "device: GPU tasks need workers started with `--resources GPU=1` (one per GPU, "
            "see diffinv.study.device); none of this cluster's workers has that resource"
        )


def _say(log: Any, text: str) -> None:
    if log is not None:
        print(text, file=log, flush=True)
