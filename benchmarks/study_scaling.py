"""Study scaling: the same 24-task study as a plain Python loop and on Dask with 1 and 2 workers.

The study: the ``gaussian-field`` problem (2 images) x DAPS (``--steps`` steps, 16 samples)
x 12 sampler seeds = 24 tasks.  Each timing is measured in this run, all with one torch
thread per task:

* ``loop``: ``for task in tasks: execute_task(task)`` in this process (the hand-written
  loop a study replaces; nothing written).
* ``dask-N``: ``diffinv.study.run`` on a ``LocalCluster`` with N worker processes into a
  fresh store (submit, compute, transfer, atomic HDF5 write per task); the cluster start
  and the workers' first import of diffinv are timed separately and reported apart.

Printed: time per task of the loop; for each N, the study time, the speed-up over the loop
and over ``dask-1``, and the overhead per task ``(N * T_dask-N - T_loop) / n_tasks`` (the
worker time not spent computing, 0 for perfect scaling) also as a fraction of the loop's
time per task (target: < 5 % for tasks of >= 5 s, i.e. ``--steps 400`` or more here), and
the worker time spent outside the task function (scheduling, transfer; from the
``task_seconds`` each task records), which does not depend on how loaded the machine was
during the loop.

Usage: python benchmarks/study_scaling.py [--steps 400] [--repeats 1] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from diffinv.extras import require  # noqa: E402
from diffinv.study import Store, execute_task, expand, run  # noqa: E402
from diffinv.study.execute import clear_demo_cache  # noqa: E402


def study_spec(steps: int) -> dict:
    """The 24-task study."""
    return {
        "name": "scaling",
        "problems": [{"name": "gaussian-field", "images": [0, 1]}],
        "seeds": {"start": 0, "count": 12},
        "solvers": [{"name": "daps", "steps": steps, "samples": 16,
                     "options": {"ode_steps": 1}}],
    }


def time_loop(spec: dict) -> float:
    clear_demo_cache()
    t0 = time.perf_counter()
    for task in expand(spec):
        execute_task(task, threads=1)
    return time.perf_counter() - t0


def _import_worker_modules() -> None:
    import diffinv.study.execute  # noqa: F401


def time_dask(spec: dict, workers: int) -> tuple[float, float, float]:
    """(cluster start with imports, study run, sum of in-task times) in seconds with
    ``workers`` worker processes."""
    distributed = require("distributed", extra="study", purpose="diffinv study")
    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.run(_import_worker_modules)  # one-off per worker, like the cluster start
        start = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as out:
            t1 = time.perf_counter()
            result = run(spec, client, out=out, progress=False, verbose=False)
            elapsed = time.perf_counter() - t1
            in_tasks = sum(r.info["task_seconds"] for r in Store.open(out).results())
        if result.failed or len(result.completed) != result.n_tasks:
            raise RuntimeError(f"study failed: {result.failed}")
    return start, elapsed, in_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="DAPS steps per task")
    parser.add_argument("--repeats", type=int, default=1, help="repeats (min is kept)")
    parser.add_argument("--quick", action="store_true", help="short tasks (--steps 40)")
    args = parser.parse_args()
    steps = 40 if args.quick else args.steps
    torch.set_num_threads(1)
    spec = study_spec(steps)
    n = len(expand(spec))
    loop: list[float] = []
    runs: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    for _ in range(args.repeats):  # interleaved repeats; the fastest of each is kept
        loop.append(time_loop(spec))
        for workers in (1, 2):
            runs[workers].append(time_dask(spec, workers))
    best = {w: min(r, key=lambda x: x[1]) for w, r in runs.items()}
    t_loop = min(loop)
    per_task = t_loop / n
    print(f"study_scaling: {n} tasks (gaussian-field, DAPS {steps} steps, 16 samples), "
          f"1 torch thread per task, {os.cpu_count()} cores, {args.repeats} repeat(s)")
    print(f"loop       : {t_loop:7.1f} s  ({per_task:.2f} s per task)")
    for workers, (start, t, in_tasks) in best.items():
        overhead = (workers * t - t_loop) / n
        outside = (workers * t - in_tasks) / n
        print(f"dask-{workers}     : {t:7.1f} s  (cluster start + imports {start:.1f} s apart)  "
              f"speed-up vs loop {t_loop / t:5.2f}  vs dask-1 {best[1][1] / t:5.2f}")
        print(f"             overhead per task vs loop {overhead:+.3f} s = "
              f"{100 * overhead / per_task:+.1f} % of a loop task; worker time outside the "
              f"task function {outside:+.3f} s per task = {100 * outside * n / in_tasks:+.1f} %"
              " of the in-task time")


if __name__ == "__main__":
    main()
