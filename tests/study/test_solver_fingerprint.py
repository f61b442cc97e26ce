"""Task ids follow the solver's defaults: a defaults change gives new ids (a store made
before it is not reused), an unchanged task is still skipped on rerun."""

from __future__ import annotations

import dataclasses

import pytest

from diffinv.solvers import get_solver, solver_options
from diffinv.study import Store, execute_task, expand, run
from diffinv.study.tasks import defaults_fingerprint, solver_fingerprint, task_id

SPEC = {
    "name": "fingerprint",
    "problems": [{"name": "gaussian-field", "images": [0]}],
    "seeds": [0],
    "solvers": [{"name": "dps", "steps": 3, "samples": 2}],
}


def _solver_a(problem, prior, ctx, *, threshold: float | None = None, kernel: str = "auto"):
    return None


def _solver_b(problem, prior, ctx, *, threshold: float | None = 0.5, kernel: str = "auto"):
    return None


def _solver_c(problem, prior, ctx, *, threshold: float | None = None, kernel: str = "auto"):
    return None


_solver_c.defaults_version = 2


_MARKER_D, _MARKER_E = object(), object()  # same type, different addresses


def _solver_d(problem, prior, ctx, *, marker: object = _MARKER_D):
    return None


def _solver_e(problem, prior, ctx, *, marker: object = _MARKER_E):
    return None


def test_fingerprint_changes_with_a_default_or_the_defaults_version():
    a, b, c = (defaults_fingerprint(f) for f in (_solver_a, _solver_b, _solver_c))
    assert len({a, b, c}) == 3  # 0.5 -> None; "auto" meaning changed (defaults_version)
    assert a == defaults_fingerprint(_solver_a)
    # a non-JSON default enters by its type, never by its address
    assert defaults_fingerprint(_solver_d) == defaults_fingerprint(_solver_e)
    assert solver_fingerprint("smc") == defaults_fingerprint(get_solver("smc"))
    with pytest.raises(ValueError, match="unknown solver"):
        solver_fingerprint("magic")


def test_ids_change_with_the_fingerprint_and_explicit_options():
    (task,) = expand(SPEC)
    assert task.settings["solver_defaults"] == solver_fingerprint("dps")
    old = {**task.settings, "solver_defaults": defaults_fingerprint(_solver_a)}
    assert task_id(old) != task.id
    # pinning an option at its current default is another setting than the default
    name, value = next(iter(solver_options("dps").items()))
    pinned = {**SPEC, "solvers": [{**SPEC["solvers"][0], "options": {name: value}}]}
    (explicit,) = expand(pinned)
    assert explicit.id != task.id and explicit.settings["solver_defaults"] == \
        task.settings["solver_defaults"]


def test_store_of_old_defaults_is_not_reused_and_unchanged_task_skipped(tmp_path):
    (task,) = expand(SPEC)
    result = execute_task(task)
    # a store written before a defaults change: same settings, another fingerprint
    old_settings = {**task.settings, "solver_defaults": "0" * 16}
    stale = Store.open(tmp_path / "old", create=True)
    stale.write(dataclasses.replace(result, task_id=task_id(old_settings),
                                    settings=old_settings))
    assert stale.completed([task.id]) == set()  # the current task would run again
    store = Store.open(tmp_path / "new", create=True)
    store.write(result)
    again = run(SPEC, out=tmp_path / "new", progress=False, verbose=False)
    assert again.skipped == 1 and again.completed == [] and again.dashboard is None
