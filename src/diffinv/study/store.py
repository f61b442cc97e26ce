"""The study store: a directory with one HDF5 file per finished task.

Layout::

    STORE/
      spec.json                   the latest spec run into this store (+ specs/<id>.json,
                                  one per distinct spec, with its task ids)
      tasks/<task_id>.h5          one finished task (see below)
      tasks/<task_id>.failed.json the last failure of a task that has not succeeded yet
      report/                     written by ``diffinv study report``

Why one HDF5 file per task, written by the client:

* **Atomic by construction.**  Each file is written under a temporary name in ``tasks/``
  and renamed onto ``<task_id>.h5`` (:func:`diffinv.io.atomic_write`); a process killed at
  any moment leaves either the previous state or the complete file, never a half-written
  file under the final name.  A single HDF5/Zarr container with one group per task would
  need its own journaling: an HDF5 file killed mid-write can be unreadable as a whole, and
  a Zarr group is many files with no atomic commit.
* **Resume is a directory listing.**  A task is done exactly when its file exists and opens
  with ``status = "complete"``; temporary files left by a kill, unreadable files (e.g. a
  copy truncated by a full disk) and failure records are redone.
* **Workers never touch the store.**  Workers return a :class:`TaskResult` (kilobytes to a
  few megabytes) to the client, which writes it.  So the store needs no file system shared
  with the workers (SLURM, Kubernetes, cloud clusters work as is), there is one writer (no
  HDF5 file locking across nodes, which NFS does badly), and a worker killed mid-task
  cannot touch the store at all: Dask reruns its task elsewhere.
* **Portable.**  h5py is a core dependency; every file is readable on its own
  (``h5py``, ``h5dump``, :meth:`Store.load`) and can be copied or deleted independently.

Task file: datasets ``mean``, ``std``, ``quantiles`` (attribute ``levels``), ``truth``,
``samples``, ``weights``, ``calibration_nominal``, ``calibration_empirical`` (those the task
produced), group ``metrics`` (one float64 scalar per metric), attributes ``format``,
``status``, ``task_id``, and JSON strings ``settings``, ``diagnostics``, ``metadata``,
``info``.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write, jsonable
from .execute import TaskResult
from .tasks import Task, task_id

__all__ = ["Store", "TASK_FORMAT"]

TASK_FORMAT = "diffinv.study.task/1"
_JSON_ATTRS = ("settings", "diagnostics", "metadata", "info")


class Store:
    """A study store rooted at ``root`` (created on :meth:`open` with ``create=True``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.tasks_dir = self.root / "tasks"

    @classmethod
    def open(cls, root: str | os.PathLike, create: bool = False) -> Store:
        """Open the store at ``root``; ``create`` makes the directories when missing.

        Raises ``FileNotFoundError`` naming ``root`` when it is not a store and ``create`` is
        false.
        """
        store = cls(root)
        if create:
            store.tasks_dir.mkdir(parents=True, exist_ok=True)
            (store.root / "specs").mkdir(exist_ok=True)
        elif not store.tasks_dir.is_dir():
            raise FileNotFoundError(
                f"store: {str(store.root)!r} is not a study store (no tasks/ directory)"
            )
        return store

    # -- paths ---------------------------------------------------------------------------
    def task_path(self, tid: str) -> Path:
        """The HDF5 file of task ``tid``."""
        return self.tasks_dir / f"{tid}.h5"

    def failure_path(self, tid: str) -> Path:
        """The failure record of task ``tid``."""
        return self.tasks_dir / f"{tid}.failed.json"

    # -- state -------------------------------------------------------------------------------
    def remove_partial(self) -> list[str]:
        """Delete temporary files left by interrupted writes; return their names.

        Only safe while no other process writes to this store (one run per store at a time).
        """
        removed = []
        for path in self.tasks_dir.glob(".*.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed

    def is_complete(self, tid: str) -> bool:
        """Whether task ``tid`` has a readable, complete file."""
        import h5py

        path = self.task_path(tid)
        if not path.is_file():
            return False
        try:
            with h5py.File(path, "r") as f:
                return (
                    f.attrs.get("format") == TASK_FORMAT
                    and f.attrs.get("status") == "complete"
                    and f.attrs.get("task_id") == tid
                    and "mean" in f
                )
        except (OSError, KeyError, ValueError):
            return False

    def completed(self, ids: list[str] | None = None) -> set[str]:
        """The ids (of ``ids``, default every task file) whose file is complete."""
        if ids is None:
            ids = [p.name[: -len(".h5")] for p in self.tasks_dir.glob("*.h5")]
        return {tid for tid in ids if self.is_complete(tid)}

    def failures(self) -> dict[str, dict[str, Any]]:
        """Failure records by task id (tasks that failed and have not succeeded since)."""
        out = {}
        for path in sorted(self.tasks_dir.glob("*.failed.json")):
            tid = path.name[: -len(".failed.json")]
            try:
                out[tid] = json.loads(path.read_text())
            except (OSError, ValueError):
                out[tid] = {"error": "unreadable failure record"}
        return out

    # -- writing -------------------------------------------------------------------------------
    def record_spec(self, source: dict[str, Any], name: str, ids: list[str]) -> Path:
        """Record a spec (its source mapping and task ids) as ``spec.json`` and
        ``specs/<id>.json``, atomically."""
        record = {"name": name, "spec": source, "task_ids": ids, "recorded": time.time()}
        sid = task_id({"spec": jsonable(source)})
        _write_json(self.root / "specs" / f"{sid}.json", record)
        return _write_json(self.root / "spec.json", record)

    def write(self, result: TaskResult) -> Path:
        """Write a finished task atomically; remove its failure record."""
        import h5py

        if task_id(result.settings) != result.task_id:
            raise ValueError(f"result: task id {result.task_id!r} does not match its settings")

        def write(tmp: str) -> None:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = TASK_FORMAT
                f.attrs["task_id"] = result.task_id
                for key in _JSON_ATTRS:
                    f.attrs[key] = json.dumps(jsonable(getattr(result, key)))
                for key, value in result.arrays.items():
                    f.create_dataset(key, data=value)
                if "quantiles" in f:
                    f["quantiles"].attrs["levels"] = np.asarray(result.settings["quantiles"])
                group = f.create_group("metrics")
                for key, value in result.metrics.items():
                    group.create_dataset(key, data=np.float64(value))
                f.attrs["status"] = "complete"

        path = atomic_write(self.task_path(result.task_id), write, suffix=".tmp")
        self.failure_path(result.task_id).unlink(missing_ok=True)
        return path

    def write_failure(self, task: Task, error: BaseException) -> Path:
        """Record that ``task`` failed with ``error`` (redone by the next run)."""
        record = {
            "task_id": task.id,
            "label": task.label,
            "settings": task.settings,
            "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)),
            "time": time.time(),
        }
        return _write_json(self.failure_path(task.id), record)

    # -- reading -------------------------------------------------------------------------------
    def load(self, tid: str, arrays: bool = True) -> TaskResult:
        """Read task ``tid`` (``arrays=False`` skips the datasets, for tables)."""
        import h5py

        path = self.task_path(tid)
        if not self.is_complete(tid):
            raise FileNotFoundError(f"task: no complete result for {tid!r} at {str(path)!r}")
        with h5py.File(path, "r") as f:
            meta = {key: json.loads(f.attrs[key]) for key in _JSON_ATTRS}
            metrics = {k: float(np.asarray(v)) for k, v in f["metrics"].items()}
            data = {}
            if arrays:
                data = {k: np.asarray(v) for k, v in f.items() if k != "metrics"}
        return TaskResult(tid, meta["settings"], data, metrics, meta["diagnostics"],
                          meta["metadata"], meta["info"])

    def results(self, arrays: bool = False) -> list[TaskResult]:
        """Every complete task of the store, sorted by id."""
        return [self.load(tid, arrays=arrays) for tid in sorted(self.completed())]


def _write_json(path: Path, obj: Any) -> Path:
    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n")

    return atomic_write(path, write, suffix=".tmp")
