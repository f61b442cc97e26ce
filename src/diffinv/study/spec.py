"""Study specification: parse and validate a YAML file or a dict into a :class:`StudySpec`.

A spec names the problems (built-in problems of :mod:`diffinv.demos`, which carry a held-out
truth), the solvers with their options, steps and sample counts, the sampler seeds and the
metrics.  Every error names the spec key at fault, e.g. ``solvers[1].steps``::

    name: small                      # free text, recorded in the store
    problems:
      - name: gaussian-field         # a built-in problem (``diffinv problems``)
        images: [0, 1]               # seeds of the held-out truth / data (default [0])
        options: {size: 16}          # keyword arguments of the problem builder (some
                                     # builders take the prior: {prior: gaussian})
      - phase-retrieval-cdp          # shorthand for {name: ..., images: [0]}
      - files: "data/*.uvfits"       # measured files (a glob or a list of paths/globs):
        kind: eht                    # eht | mri | ct (default: detected from the files)
        prior: blackhole             # shipped prior name or checkpoint path (default: the
                                     # kind's default, as `diffinv reconstruct --data`)
        combine: true                # true: all files make one problem (EHT bands/days);
                                     # false (default): one problem per file
    seeds: [0, 1, 2]                 # sampler seeds (or {start: 0, count: 3})
    solvers:
      - name: daps
        steps: [20, 50]              # a list sweeps (so does samples)
        samples: 8
        options: {ode_steps: 1}      # fixed solver options
        grid: {langevin_lr: [0.1, 0.5]}  # swept solver options (Cartesian product)
        problem_defaults: false      # true: start from the problem's tuned options
    metrics: [psnr, coverage, calibration, reduced_chi2, wall_time]   # default: all
    coverage_levels: [0.5, 0.9]
    quantiles: [0.05, 0.5, 0.95]     # pixelwise quantiles stored per task
    save_samples: false              # store the samples too
    dtype: float32
    device: cpu                      # or cuda (one task per GPU) or auto
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..extras import require

__all__ = [
    "METRICS",
    "ProblemSpec",
    "SolverSpec",
    "StudySpec",
    "load_spec",
    "parse_spec",
]

#: Metric names a spec may request (see :mod:`diffinv.study.metrics` for definitions).
METRICS = ("psnr", "rmse", "coverage", "calibration", "reduced_chi2", "wall_time", "nfe", "ess")
_TOP_KEYS = {
    "name", "problems", "seeds", "solvers", "metrics", "coverage_levels", "quantiles",
    "save_samples", "dtype", "device",
}
_PROBLEM_KEYS = {"name", "images", "options"}
_FILES_KEYS = {"files", "kind", "prior", "combine"}
_KINDS = ("eht", "mri", "ct")
_SOLVER_KEYS = {"name", "steps", "samples", "options", "grid", "problem_defaults"}
_DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class ProblemSpec:
    """One problem entry: a built-in problem (name, truth/data seeds, builder options) or
    measured files (``name`` ``data:KIND``, one file group per image index, no truth)."""

    name: str
    images: tuple[int, ...] = (0,)
    options: dict[str, Any] = field(default_factory=dict)
    file_groups: tuple[tuple[str, ...], ...] = ()
    kind: str | None = None
    prior: str | None = None


@dataclass(frozen=True)
class SolverSpec:
    """One solver with the values swept over (steps, samples, grid of options)."""

    name: str
    steps: tuple[int, ...]
    samples: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    problem_defaults: bool = False


@dataclass(frozen=True)
class StudySpec:
    """A validated study specification (see the module docstring for the YAML form)."""

    problems: tuple[ProblemSpec, ...]
    solvers: tuple[SolverSpec, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...] = METRICS
    coverage_levels: tuple[float, ...] = (0.5, 0.9)
    quantiles: tuple[float, ...] = (0.05, 0.5, 0.95)
    save_samples: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    name: str = "study"
    source: dict[str, Any] = field(default_factory=dict, compare=False)


def load_spec(spec: str | os.PathLike | Mapping[str, Any] | StudySpec) -> StudySpec:
    """Read a spec from a YAML file path, a mapping, or return a :class:`StudySpec` as is.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        Naming the file or the spec key that is wrong and what was expected.
    ImportError
        When a YAML file is given and PyYAML is missing (``pip install diffinv[study]``).
    """
    if isinstance(spec, StudySpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(
            f"spec: expected a YAML file path, a mapping or a StudySpec, got {type(spec).__name__}"
        )
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"spec: no spec file at {str(path)!r}")
    yaml = require("yaml", extra="study", purpose="diffinv study")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"spec: {str(path)!r} is not valid YAML: {err}") from None
    try:
        return parse_spec(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def parse_spec(data: Any) -> StudySpec:
    """Validate a mapping (as read from YAML) into a :class:`StudySpec`; the input is not
    modified."""
    if not isinstance(data, Mapping):
        raise ValueError(f"spec: expected a mapping at the top level, got {type(data).__name__}")
    _check_keys(data, _TOP_KEYS, "spec")
    for key in ("problems", "solvers", "seeds"):
        if key not in data:
            raise ValueError(f"{key}: required key missing from the spec")
    problems = _nonempty_list(data["problems"], "problems")
    solvers = _nonempty_list(data["solvers"], "solvers")
    metrics = tuple(_nonempty_list(data.get("metrics", list(METRICS)), "metrics"))
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise ValueError(f"metrics[{i}]: unknown metric {m!r}; expected one of {METRICS}")
    dtype = data.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    device = data.get("device", "cpu")
    if device not in _DEVICES:
        raise ValueError(f"device: expected one of {_DEVICES}, got {device!r}")
    name = data.get("name", "study")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    return StudySpec(
        problems=tuple(_problem(p, f"problems[{i}]") for i, p in enumerate(problems)),
        solvers=tuple(_solver(s, f"solvers[{i}]") for i, s in enumerate(solvers)),
        seeds=_seeds(data["seeds"]),
        metrics=tuple(dict.fromkeys(metrics)),
        coverage_levels=_probabilities(data.get("coverage_levels", [0.5, 0.9]),
                                       "coverage_levels", open_interval=True),
        quantiles=_probabilities(data.get("quantiles", [0.05, 0.5, 0.95]), "quantiles",
                                 open_interval=False),
        save_samples=_bool(data.get("save_samples", False), "save_samples"),
        dtype=dtype,
        device=device,
        name=name,
        source=_plain(data),
    )


# -- pieces ---------------------------------------------------------------------------------
def _problem(entry: Any, where: str) -> ProblemSpec:
    from ..demos import available_demos, get_demo

    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a problem name or a mapping, got {entry!r}")
    if "files" in entry:
        return _files_problem(entry, where)
    _check_keys(entry, _PROBLEM_KEYS, where)
    name = entry.get("name")
    if name not in available_demos():
        raise ValueError(
            f"{where}.name: unknown problem {name!r}; expected one of {available_demos()}"
        )
    options = _mapping(entry.get("options", {}), f"{where}.options")
    params = inspect.signature(get_demo(name)).parameters
    for key in options:
        if key == "seed" or key not in params:
            allowed = sorted(k for k in params if k != "seed")
            raise ValueError(
                f"{where}.options.{key}: not an option of problem {name!r}; its options are "
                f"{allowed} (the truth seed goes in {where}.images)"
            )
    images = _int_list(entry.get("images", [0]), f"{where}.images", minimum=0)
    return ProblemSpec(name=name, images=images, options=options)


def _files_problem(entry: Mapping[str, Any], where: str) -> ProblemSpec:
    """A problem entry of measured files: globs expanded now, paths made absolute."""
    import glob

    _check_keys(entry, _FILES_KEYS, where)
    patterns = entry["files"]
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)) or not patterns:
        raise ValueError(f"{where}.files: expected a path, a glob or a list of them")
    paths: list[str] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, (str, os.PathLike)):
            raise ValueError(f"{where}.files[{i}]: expected a path or glob, got {pattern!r}")
        found = sorted(glob.glob(os.path.expanduser(str(pattern))))
        found = [f for f in found if not f.endswith(".hdr")]  # BART pairs: the .cfl names it
        if not found:
            raise ValueError(f"{where}.files[{i}]: no file matches {str(pattern)!r}")
        paths += [str(Path(f).resolve()) for f in found]
    paths = list(dict.fromkeys(paths))
    kind = entry.get("kind")
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"{where}.kind: expected one of {_KINDS}, got {kind!r}")
    prior = entry.get("prior")
    if prior is not None and not isinstance(prior, str):
        raise ValueError(f"{where}.prior: expected a shipped prior name or a path, got {prior!r}")
    combine = _bool(entry.get("combine", False), f"{where}.combine")
    groups = (tuple(paths),) if combine else tuple((p,) for p in paths)
    return ProblemSpec(name=f"data:{kind or 'auto'}", images=tuple(range(len(groups))),
                       file_groups=groups, kind=kind, prior=prior)


def _solver(entry: Any, where: str) -> SolverSpec:
    from ..solvers import available_solvers, solver_options

    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping with name, steps, samples, got {entry!r}")
    _check_keys(entry, _SOLVER_KEYS, where)
    name = entry.get("name")
    if name not in available_solvers():
        raise ValueError(
            f"{where}.name: unknown solver {name!r}; expected one of {available_solvers()}"
        )
    for key in ("steps", "samples"):
        if key not in entry:
            raise ValueError(f"{where}.{key}: required key missing")
    known = solver_options(name)
    options = _mapping(entry.get("options", {}), f"{where}.options")
    grid = _mapping(entry.get("grid", {}), f"{where}.grid")
    for part, values in (("options", options), ("grid", grid)):
        for key in values:
            if key not in known:
                raise ValueError(
                    f"{where}.{part}.{key}: unknown option for solver {name!r}; its options "
                    f"are {sorted(known)}"
                )
    for key in grid:
        if key in options:
            raise ValueError(f"{where}.grid.{key}: also set in {where}.options; keep one")
    grid_t = {k: tuple(_nonempty_list(v, f"{where}.grid.{k}")) for k, v in grid.items()}
    return SolverSpec(
        name=name,
        steps=_int_list(entry["steps"], f"{where}.steps", minimum=1),
        samples=_int_list(entry["samples"], f"{where}.samples", minimum=1),
        options=options,
        grid=grid_t,
        problem_defaults=_bool(entry.get("problem_defaults", False),
                               f"{where}.problem_defaults"),
    )


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        _check_keys(value, {"start", "count"}, "seeds")
        start = value.get("start", 0)
        count = value.get("count")
        if not _is_int(start) or start < 0:
            raise ValueError(f"seeds.start: expected a non-negative integer, got {start!r}")
        if not _is_int(count) or count < 1:
            raise ValueError(f"seeds.count: expected a positive integer, got {count!r}")
        return tuple(range(start, start + count))
    return _int_list(value, "seeds", minimum=0)


def _check_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in entry:
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown key; expected some of {sorted(allowed)}")


def _nonempty_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ValueError(f"{where}: expected a non-empty list, got {value!r}")
    return list(value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping of name: value, got {value!r}")
    for key in value:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"{where}: {key!r} is not a valid option name")
    return _plain(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value: Any, where: str, minimum: int) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if len(values) == 0:
        raise ValueError(f"{where}: expected an integer or a non-empty list of them")
    for v in values:
        if not _is_int(v) or v < minimum:
            kind = "positive" if minimum == 1 else "non-negative"
            raise ValueError(f"{where}: expected {kind} integers, got {v!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{where}: repeated values in {list(values)!r}")
    return tuple(values)


def _probabilities(value: Any, where: str, open_interval: bool) -> tuple[float, ...]:
    values = _nonempty_list(value, where)
    for v in values:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if ok:
            ok = 0.0 < v < 1.0 if open_interval else 0.0 <= v <= 1.0
        if not ok:
            bounds = "(0, 1)" if open_interval else "[0, 1]"
            raise ValueError(f"{where}: expected probabilities in {bounds}, got {v!r}")
    return tuple(float(v) for v in values)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars (never the caller's objects)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
