"""The store: atomic per-task files, resume state, report (no cluster needed)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from diffinv.study import Store, execute_task, expand, write_report

SPEC = {
    "name": "store",
    "problems": [{"name": "gaussian-field", "images": [0, 1]}],
    "seeds": [0, 1],
    "solvers": [{"name": "dps", "steps": 3, "samples": 4}],
    "save_samples": True,
}


@pytest.fixture(scope="module")
def results():
    return [execute_task(t) for t in expand(SPEC)]


def test_roundtrip_is_exact(tmp_path, results):
    store = Store.open(tmp_path / "s", create=True)
    for r in results:
        store.write(r)
    assert store.completed() == {r.task_id for r in results}
    for r in results:
        back = store.load(r.task_id)
        assert back.settings == r.settings
        assert set(back.arrays) == set(r.arrays)
        for key, value in r.arrays.items():
            assert back.arrays[key].dtype == value.dtype
            np.testing.assert_array_equal(back.arrays[key], value)
        assert back.arrays["quantiles"].shape == (3, 1, 16, 16)
        assert back.arrays["samples"].shape == (4, 1, 16, 16)
        assert back.metrics.keys() == r.metrics.keys()
        assert all(math.isclose(back.metrics[k], v) or (math.isnan(v) and math.isnan(
            back.metrics[k])) for k, v in r.metrics.items())


def test_partial_and_unreadable_files_are_not_complete(tmp_path, results):
    store = Store.open(tmp_path / "s", create=True)
    first, second, third = results[:3]
    store.write(first)
    store.write(second)
    # a write killed before its rename leaves only a temporary file
    (store.tasks_dir / f".{third.task_id}.h5.abc123.tmp").write_bytes(b"\x89HDF\r\n")
    # a file truncated under the final name (e.g. copied off a full disk)
    data = store.task_path(second.task_id).read_bytes()
    store.task_path(second.task_id).write_bytes(data[: len(data) // 2])
    assert store.completed([r.task_id for r in results]) == {first.task_id}
    assert store.remove_partial() == [f".{third.task_id}.h5.abc123.tmp"]
    with pytest.raises(FileNotFoundError, match=second.task_id):
        store.load(second.task_id)


def test_failure_record_cleared_on_success(tmp_path, results):
    store = Store.open(tmp_path / "s", create=True)
    task = expand(SPEC)[0]
    store.write_failure(task, FloatingPointError("NaN at step 3"))
    assert "FloatingPointError: NaN at step 3" in store.failures()[task.id]["error"]
    store.write(results[0])
    assert store.failures() == {}


def test_mismatched_result_rejected(tmp_path, results):
    store = Store.open(tmp_path / "s", create=True)
    bad = execute_task(expand(SPEC)[0])
    bad.settings["seed"] = 99
    with pytest.raises(ValueError, match="does not match"):
        store.write(bad)


def test_report_tables_and_plots(tmp_path, results):
    store = Store.open(tmp_path / "s", create=True)
    for r in results:
        store.write(r)
    paths = write_report(store.root)
    names = sorted(p.name for p in paths)
    assert names == ["calibration.png", "summary.csv", "summary.md", "tasks.csv",
                     "wall_time.png"]
    for p in paths:
        assert p.stat().st_size > 0
    with open(store.root / "report" / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 1  # one setting
    row = summary[0]
    assert row["n"] == "4" and row["images"] == "2" and row["seeds"] == "2"
    psnrs = [r.metrics["psnr"] for r in results]
    assert math.isclose(float(row["psnr_mean"]), float(np.mean(psnrs)), rel_tol=1e-12)
    assert math.isclose(float(row["psnr_std"]), float(np.std(psnrs, ddof=1)), rel_tol=1e-12)
    md = (store.root / "report" / "summary.md").read_text()
    assert "| gaussian-field | dps steps=3 samples=4 | 4 |" in md
    assert len((store.root / "report" / "tasks.csv").read_text().splitlines()) == 5


def test_report_leaves_the_matplotlib_backend_alone(tmp_path, results):
    """A notebook calling write_report keeps its inline backend (it was switched to Agg)."""
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    store = Store.open(tmp_path / "s", create=True)
    for r in results[:1]:
        store.write(r)
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        open_figures = plt.get_fignums()
        write_report(store.root)
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == open_figures  # no pyplot figure left behind
    finally:
        matplotlib.use(before)


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a study store"):
        write_report(tmp_path)
    Store.open(tmp_path / "empty", create=True)
    with pytest.raises(ValueError, match="no finished task"):
        write_report(tmp_path / "empty")
