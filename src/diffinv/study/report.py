"""``diffinv study report STORE``: tables (CSV, Markdown) and plots (PNG) of a study store.

Written to ``STORE/report/`` (or ``out``), each file atomically:

* ``tasks.csv``: one row per finished task (settings, metrics, ``task_seconds``).
* ``summary.csv`` / ``summary.md``: one row per problem x solver setting (solver, steps,
  samples, options), each metric as mean and sample standard deviation (``ddof=1``) over
  the sampler seeds and the images (truth seeds) of that setting, with the count ``n``.
* ``calibration.png``: empirical against nominal coverage of the central credible
  intervals, per problem, one curve per solver setting (averaged over seeds and images).
* ``wall_time.png``: wall time of every task, per problem and solver setting.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write
from ..plotting import new_figure, save_png
from .store import Store
from .tasks import setting_label

__all__ = ["write_report", "task_rows", "summary_rows", "markdown_table"]

_SETTING_COLUMNS = ("task_id", "problem", "image", "solver", "steps", "samples", "seed",
                    "options", "setting")
_ORDER = ("psnr", "rmse", "coverage", "reduced_chi2", "reduced_chi2_median", "wall_seconds",
          "task_seconds", "nfe", "ess")


def write_report(store: str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """Write the report of the store at ``store`` into ``out`` (default ``STORE/report``).

    Returns the written paths.  Raises ``FileNotFoundError`` when ``store`` is not a study
    store and ``ValueError`` when it holds no finished task.
    """
    st = Store.open(store)
    results = st.results(arrays=True)
    if not results:
        raise ValueError(f"store: {str(st.root)!r} holds no finished task yet")
    out_dir = Path(out) if out is not None else st.root / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = task_rows(results)
    summary = summary_rows(rows)
    failures = st.failures()
    paths = [
        _write_text(out_dir / "tasks.csv", _csv(rows)),
        _write_text(out_dir / "summary.csv", _csv(summary)),
        _write_text(out_dir / "summary.md", markdown_table(summary, failures)),
        _plot_calibration(out_dir / "calibration.png", results),
        _plot_wall_time(out_dir / "wall_time.png", rows),
    ]
    return paths


def task_rows(results: list[Any]) -> list[dict[str, Any]]:
    """One dict per task: its settings columns, then its metrics and ``task_seconds``."""
    rows = []
    for r in results:
        s = r.settings
        row: dict[str, Any] = {
            "task_id": r.task_id, "problem": s["problem"], "image": s["image"],
            "solver": s["solver"], "steps": s["steps"], "samples": s["samples"],
            "seed": s["seed"], "options": json.dumps(s["options"], sort_keys=True),
            "setting": setting_label(s),
        }
        row.update(r.metrics)
        row["task_seconds"] = float(r.info.get("task_seconds", math.nan))
        rows.append(row)
    return rows


def _metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    names = {k for row in rows for k in row if k not in _SETTING_COLUMNS}

    def rank(name: str) -> tuple[int, str]:
        for i, prefix in enumerate(_ORDER):
            if name == prefix or (prefix == "coverage" and name.startswith("coverage_")):
                return i, name
        return len(_ORDER), name

    return sorted(names, key=rank)


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group task rows by (problem, setting): ``n`` and each metric's mean and std."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["problem"], row["setting"])].append(row)
    metrics = _metric_columns(rows)
    out = []
    for (problem, setting), members in sorted(groups.items()):
        first = members[0]
        entry: dict[str, Any] = {
            "problem": problem, "solver": first["solver"], "setting": setting,
            "n": len(members),
            "images": len({m["image"] for m in members}),
            "seeds": len({m["seed"] for m in members}),
        }
        for name in metrics:
            values = np.array([float(m.get(name, math.nan)) for m in members])
            finite = values[np.isfinite(values)]
            entry[f"{name}_mean"] = float(finite.mean()) if finite.size else math.nan
            entry[f"{name}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
        out.append(entry)
    return out


def markdown_table(summary: list[dict[str, Any]], failures: dict[str, Any] | None = None) -> str:
    """A Markdown table: one row per problem x setting, cells ``mean ± std`` (``n`` tasks)."""
    metrics = [k[: -len("_mean")] for k in summary[0] if k.endswith("_mean")]
    head = ["problem", "setting", "n"] + metrics
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [e["problem"], e["setting"], str(e["n"])]
        for m in metrics:
            mean, std = e[f"{m}_mean"], e[f"{m}_std"]
            cells.append(_fmt(mean) + ("" if math.isnan(std) else f" ± {_fmt(std)}"))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\nmean ± standard deviation over sampler seeds and images.\n"
    if failures:
        text += f"\n{len(failures)} task(s) failed (rerun the study to redo them):\n\n"
        for tid, rec in sorted(failures.items()):
            text += f"- `{tid}` {rec.get('label', '')}: {rec.get('error', '')}\n"
    return text


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), suffix=".tmp")


def _plot_calibration(path: Path, results: list[Any]) -> Path:
    curves: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    nominal: np.ndarray | None = None
    for r in results:
        if "calibration_empirical" in r.arrays:
            nominal = r.arrays["calibration_nominal"]
            label = setting_label(r.settings)
            curves[r.settings["problem"]][label].append(r.arrays["calibration_empirical"])
    problems = sorted(curves) or ["(no calibration data)"]
    fig, axes = new_figure(len(problems), (4.5, 4.0), purpose="diffinv study report")
    for ax, problem in zip(axes, problems):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
        for label, values in sorted(curves.get(problem, {}).items()):
            arr = np.stack(values)
            mean = arr.mean(0)
            line = ax.plot(nominal, mean, marker="o", ms=3, label=f"{label} (n={len(values)})")
            if len(values) > 1:
                std = arr.std(0, ddof=1)
                ax.fill_between(nominal, mean - std, mean + std, alpha=0.15,
                                color=line[0].get_color())
        ax.set_title(problem)
        ax.set_xlabel("nominal coverage of central interval")
        ax.set_ylabel("empirical coverage (fraction of pixels)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, loc="upper left")
    return save_png(fig, path)


def _plot_wall_time(path: Path, rows: list[dict[str, Any]]) -> Path:
    problems = sorted({r["problem"] for r in rows})
    fig, axes = new_figure(len(problems), (5.0, 4.0), purpose="diffinv study report")
    for ax, problem in zip(axes, problems):
        members = [r for r in rows if r["problem"] == problem]
        settings = sorted({r["setting"] for r in members})
        for i, setting in enumerate(settings):
            times = [r["task_seconds"] for r in members if r["setting"] == setting]
            jitter = np.linspace(-0.15, 0.15, len(times)) if len(times) > 1 else [0.0]
            ax.scatter(i + np.asarray(jitter), times, s=14)
        ax.set_xticks(range(len(settings)))
        ax.set_xticklabels(settings, rotation=30, ha="right", fontsize=6)
        ax.set_title(problem)
        ax.set_ylabel("task wall time (s)")
        ax.set_ylim(bottom=0)
    return save_png(fig, path)
