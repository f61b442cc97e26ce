"""Expand a :class:`StudySpec` into independent tasks with stable ids.

A task is one reconstruction: one problem instance (problem, builder options, image seed),
one solver setting (name, steps, samples, options) and one sampler seed, plus what to store
(metrics, coverage levels, quantiles, samples, dtype).  Its id is the first 16 hex digits of
the SHA-256 of the canonical JSON of these settings, so the same settings give the same id
in any run, on any machine, in any order of the spec; changing any of them gives a new task.
The device is not part of the id (it is where a task runs, not what it computes).

The settings also hold ``solver_defaults``, the :func:`solver_fingerprint` of the solver:
a hash of the defaults of its keyword options (its signature) and of its
``defaults_version`` attribute, if it has one.  So a task whose solver's defaults changed
gets a new id, and a store made before the change is never mistaken for the new defaults
(its tasks are run again, the old results stay beside them).  A solver that changes what an
unchanged default means (e.g. what ``"auto"`` resolves to) without changing its signature
must raise its ``defaults_version`` for this to see it.  The problem's own solver settings
(``problem_defaults``) are not fingerprinted.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .spec import StudySpec, load_spec

__all__ = ["Task", "expand", "task_id", "setting_label", "solver_fingerprint",
           "defaults_fingerprint"]

_ID_DIGITS = 16


def _digest(obj: Any, **dump_options: Any) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), **dump_options)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_ID_DIGITS]


def task_id(settings: dict[str, Any]) -> str:
    """Stable id of a task: SHA-256 (first 16 hex digits) of its canonical JSON settings."""
    return _digest(settings, allow_nan=False)


def defaults_fingerprint(fn: Callable[..., Any]) -> str:
    """Fingerprint (16 hex digits of SHA-256) of a solver function's option defaults.

    Hashes the canonical JSON of ``{"options": {name: default}, "version": v}`` over the
    keyword-only parameters of ``fn`` (a default that is not a JSON value enters as its
    type's name, so the hash never depends on memory addresses) and ``v`` =
    ``fn.defaults_version`` (``None`` when absent).  Deterministic across processes and
    machines.
    """
    defaults = {
        p.name: p.default for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    payload = {"options": defaults, "version": getattr(fn, "defaults_version", None)}
    return _digest(payload, default=lambda v: f"<{type(v).__qualname__}>")


def solver_fingerprint(name: str) -> str:
    """:func:`defaults_fingerprint` of the registered solver ``name``."""
    from ..solvers import get_solver

    return defaults_fingerprint(get_solver(name))


@dataclass(frozen=True)
class Task:
    """One reconstruction of a study.

    Attributes
    ----------
    id : str
        :func:`task_id` of ``settings``.
    settings : dict
        ``problem``, ``problem_options``, ``image``, ``solver``, ``steps``, ``samples``,
        ``options``, ``solver_defaults`` (:func:`solver_fingerprint`),
        ``problem_defaults``, ``seed``, ``dtype``, ``metrics``,
        ``coverage_levels``, ``quantiles``, ``save_samples`` (JSON values only); for
        measured files also ``data_files``, ``data_kind`` and ``data_prior``.
    device : str
        ``cpu``, ``cuda`` or ``auto`` (see :func:`diffinv.study.device.select_device`).
    """

    id: str
    settings: dict[str, Any]
    device: str = "cpu"

    @property
    def label(self) -> str:
        """Short human-readable description (problem, image, solver setting, seed)."""
        s = self.settings
        return f"{s['problem']}#{s['image']} {setting_label(s)} seed={s['seed']}"


def setting_label(settings: dict[str, Any]) -> str:
    """``solver steps=.. samples=.. opt=value ..``: the solver setting of a task (no seed)."""
    opts = " ".join(f"{k}={v}" for k, v in sorted(settings["options"].items()))
    text = f"{settings['solver']} steps={settings['steps']} samples={settings['samples']}"
    if settings.get("problem_defaults"):
        text += " +problem-defaults"
    return f"{text} {opts}".strip()


def expand(spec: Any) -> list[Task]:
    """All tasks of a spec (a :class:`StudySpec`, mapping or YAML path), in spec order:
    problems x images x solvers x steps x samples x option grid x seeds.

    Raises ``ValueError`` if two entries of the spec describe the same task.
    """
    spec = load_spec(spec)
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    fingerprints = {s.name: solver_fingerprint(s.name) for s in spec.solvers}
    for problem in spec.problems:
        for image in problem.images:
            for solver in spec.solvers:
                for steps, samples, combo in itertools.product(
                    solver.steps, solver.samples, _grid(solver.grid)
                ):
                    for seed in spec.seeds:
                        settings = _settings(spec, problem, image, solver, steps, samples,
                                             combo, seed, fingerprints[solver.name])
                        tid = task_id(settings)
                        task = Task(tid, settings, spec.device)
                        if tid in seen:
                            raise ValueError(
                                f"solvers: {task.label} appears twice in the spec "
                                f"(first as {seen[tid]})"
                            )
                        seen[tid] = task.label
                        tasks.append(task)
    return tasks


def _grid(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _settings(
    spec: StudySpec, problem, image: int, solver, steps: int, samples: int,
    combo: dict[str, Any], seed: int, fingerprint: str,
) -> dict[str, Any]:
    data = {}
    if problem.file_groups:  # measured files: the group is the "image"
        data = {"data_files": list(problem.file_groups[image]), "data_kind": problem.kind,
                "data_prior": problem.prior}
    return {
        "problem": problem.name,
        "problem_options": dict(problem.options),
        **data,
        "image": int(image),
        "solver": solver.name,
        "steps": int(steps),
        "samples": int(samples),
        "options": {**solver.options, **combo},
        "solver_defaults": fingerprint,
        "problem_defaults": bool(solver.problem_defaults),
        "seed": int(seed),
        "dtype": spec.dtype,
        "metrics": sorted(spec.metrics),
        "coverage_levels": list(spec.coverage_levels),
        "quantiles": list(spec.quantiles),
        "save_samples": bool(spec.save_samples),
    }
