"""A real Dask LocalCluster with 2 worker processes (no mocks): results equal in-process runs
bit for bit, resume skips finished tasks and redoes missing or damaged ones, and a worker
killed mid-task (SIGKILL) leaves a readable store while its task completes on another try."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from diffinv.study import Store, execute_task, expand, run  # noqa: E402
from diffinv.study.execute import clear_demo_cache  # noqa: E402

# 2 problems x 2 solvers x 3 seeds = 12 tasks of a fraction of a second each
SPEC = {
    "name": "ci",
    "problems": ["gaussian-field", "phase-retrieval-cdp"],
    "seeds": [0, 1, 2],
    "solvers": [
        {"name": "dps", "steps": 4, "samples": 4, "options": {"zeta": 0.1}},
        {"name": "daps", "steps": 3, "samples": 4, "options": {"langevin_steps": 5},
         "problem_defaults": True},
    ],
}
TIMED = {"wall_seconds"}  # metrics and diagnostics that measure time, not results


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _assert_same_result(got, ref):
    assert got.task_id == ref.task_id and got.settings == ref.settings
    assert set(got.arrays) == set(ref.arrays)
    for key, value in ref.arrays.items():
        assert got.arrays[key].dtype == value.dtype, key
        assert np.array_equal(got.arrays[key], value), key  # bit for bit
    assert got.metrics.keys() == ref.metrics.keys()
    for key, value in ref.metrics.items():
        if key not in TIMED:
            assert got.metrics[key] == value or (math.isnan(value) and math.isnan(
                got.metrics[key])), key
    strip = {k: v for k, v in ref.diagnostics.items() if k not in TIMED}
    assert {k: v for k, v in got.diagnostics.items() if k not in TIMED} == strip


def _mtimes(store):
    return {p.name: p.stat().st_mtime_ns for p in store.tasks_dir.glob("*.h5")}


def test_results_equal_in_process_and_resume(tmp_path, client):
    out = tmp_path / "store"
    tasks = expand(SPEC)
    assert len(tasks) == 12
    first = run(SPEC, client, out=out, progress=False, verbose=False)
    assert sorted(first.completed) == sorted(t.id for t in tasks)
    assert first.failed == {} and first.skipped == 0
    store = Store.open(out)
    clear_demo_cache()
    pids = set()
    for task in tasks:
        got = store.load(task.id)
        pids.add(got.info["pid"])
        _assert_same_result(got, execute_task(task))
    assert os.getpid() not in pids and len(pids) == 2  # both worker processes ran tasks

    # resume: nothing to do, nothing rewritten, no cluster work
    before = _mtimes(store)
    again = run(SPEC, client, out=out, progress=False, verbose=False)
    assert again.skipped == 12 and again.completed == [] and again.dashboard is None
    assert _mtimes(store) == before

    # a deleted task, a damaged file and a leftover temporary file: exactly two redone
    ids = sorted(before)
    deleted, damaged = ids[0][:-3], ids[1][:-3]
    store.task_path(deleted).unlink()
    data = store.task_path(damaged).read_bytes()
    store.task_path(damaged).write_bytes(data[: len(data) // 3])
    (store.tasks_dir / f".{deleted}.h5.x1y2z3.tmp").write_bytes(data[:100])
    third = run(SPEC, client, out=out, progress=False, verbose=False)
    assert sorted(third.completed) == sorted([deleted, damaged]) and third.skipped == 10
    after = _mtimes(store)
    assert {k: v for k, v in after.items() if k not in (ids[0], ids[1])} == {
        k: v for k, v in before.items() if k not in (ids[0], ids[1])}
    assert not list(store.tasks_dir.glob(".*"))
    assert store.completed() == {t.id for t in tasks}
    clear_demo_cache()
    redone = next(t for t in tasks if t.id == damaged)
    _assert_same_result(store.load(damaged), execute_task(redone))


def _executing_keys(client, workers=None):
    """Keys each worker is executing right now (a lambda: pickled by value)."""
    return client.run(lambda dask_worker: [ts.key for ts in dask_worker.state.executing],
                      workers=workers)


def test_worker_killed_mid_task(tmp_path, client):
    spec = {
        "name": "kill",
        "problems": ["gaussian-field"],
        "seeds": [5],
        "solvers": [
            {"name": "daps", "steps": 150, "samples": 16, "options": {"ode_steps": 1}},
            {"name": "dps", "steps": [3, 4], "samples": 2},
        ],
    }
    tasks = expand(spec)
    long_task = tasks[0]
    key = f"diffinv-study-{long_task.id}"
    out = tmp_path / "store"
    box: list = []
    runner = threading.Thread(
        target=lambda: box.append(run(spec, client, out=out, progress=False, verbose=False)))
    runner.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        for address, keys in _executing_keys(client).items():
            if key in keys:
                victim = address
        time.sleep(0.05)
    assert victim is not None, "the long task never started"
    time.sleep(0.3)
    pid = client.run(os.getpid, workers=[victim])[victim]
    assert key in _executing_keys(client, [victim])[victim]  # killed mid-task
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive() and box, "the study did not finish after the kill"
    result = box[0]
    assert result.failed == {} and sorted(result.completed) == sorted(t.id for t in tasks)
    store = Store.open(out)
    assert store.completed() == {t.id for t in tasks}
    assert not list(store.tasks_dir.glob(".*"))
    got = store.load(long_task.id)
    assert got.info["pid"] != pid  # finished by another worker process
    clear_demo_cache()
    _assert_same_result(got, execute_task(long_task))
    client.wait_for_workers(2, timeout=60)
    assert pid not in client.run(os.getpid).values()  # the worker really died


def test_task_errors_are_recorded_and_redone(tmp_path, client):
    spec = {
        "name": "fail",
        "problems": [{"name": "gaussian-field", "options": {"size": "sixteen"}}],
        "seeds": [0],
        "solvers": [{"name": "dps", "steps": 2, "samples": 2}],
    }
    out = tmp_path / "store"
    (task,) = expand(spec)
    first = run(spec, client, out=out, progress=False, verbose=False)
    assert list(first.failed) == [task.id] and first.completed == []
    store = Store.open(out)
    assert store.completed() == set() and list(store.failures()) == [task.id]
    assert "TypeError" in store.failures()[task.id]["error"]
    second = run(spec, client, out=out, progress=False, verbose=False)
    assert list(second.failed) == [task.id] and second.skipped == 0  # tried again
