"""Spec validation (errors name the key), task expansion with stable ids, device choice."""

from __future__ import annotations

import copy

import pytest

from diffinv.extras import require
from diffinv.study import expand, load_spec, parse_spec
from diffinv.study.device import select_device, visible_gpus
from diffinv.study.tasks import task_id

BASE = {
    "name": "t",
    "problems": [{"name": "gaussian-field", "images": [0, 1]}, "phase-retrieval-cdp"],
    "seeds": [0, 1],
    "solvers": [
        {"name": "dps", "steps": [5, 10], "samples": 4},
        {"name": "daps", "steps": 5, "samples": 4, "options": {"ode_steps": 1},
         "grid": {"langevin_lr": [0.1, 0.5]}},
    ],
}


def _spec(**changes):
    spec = copy.deepcopy(BASE)
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"problems": [{"name": "nope"}]}, "problems[0].name"),
        ({"problems": [{"name": "gaussian-field", "options": {"sizes": 3}}]},
         "problems[0].options.sizes"),
        ({"problems": [{"name": "gaussian-field", "images": [-1]}]}, "problems[0].images"),
        ({"problems": [{"name": "gaussian-field", "colour": 1}]}, "problems[0].colour"),
        ({"solvers": [{"name": "dps", "steps": 0, "samples": 4}]}, "solvers[0].steps"),
        ({"solvers": [{"name": "dps", "steps": 5}]}, "solvers[0].samples"),
        ({"solvers": [{"name": "dps", "steps": 5, "samples": 4, "options": {"zetta": 1}}]},
         "solvers[0].options.zetta"),
        ({"solvers": [{"name": "dps", "steps": 5, "samples": 4, "grid": {"zeta": []}}]},
         "solvers[0].grid.zeta"),
        ({"solvers": [{"name": "magic", "steps": 5, "samples": 4}]}, "solvers[0].name"),
        ({"seeds": ["a"]}, "seeds"),
        ({"seeds": {"start": 0}}, "seeds.count"),
        ({"metrics": ["psnr", "fid"]}, "metrics[1]"),
        ({"coverage_levels": [1.0]}, "coverage_levels"),
        ({"quantiles": [1.5]}, "quantiles"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "float16"}, "dtype"),
        ({"save_samples": "yes"}, "save_samples"),
        ({"colour": 1}, "spec.colour"),
    ],
)
def test_errors_name_the_key(changes, key):
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(_spec(**changes))


def test_missing_required_key_and_file(tmp_path):
    spec = _spec()
    del spec["seeds"]
    with pytest.raises(ValueError, match="seeds: required"):
        parse_spec(spec)
    with pytest.raises(FileNotFoundError, match="no spec file"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("problems: [gaussian-field]\nseeds: [0]\nsolvers: [{name: dps, steps: x, "
                   "samples: 2}]\n")
    with pytest.raises(ValueError, match=r"bad.yaml: solvers\[0\].steps"):
        load_spec(bad)


def test_expansion_counts_and_stable_ids(tmp_path):
    spec = _spec()
    before = copy.deepcopy(spec)
    tasks = expand(spec)
    assert spec == before  # the user's mapping is not modified
    # 3 problem instances x (dps: 2 steps + daps: 2 grid values) x 2 seeds
    assert len(tasks) == 3 * 4 * 2
    assert len({t.id for t in tasks}) == len(tasks)
    assert all(t.id == task_id(t.settings) for t in tasks)
    # same settings in another order (and from YAML) -> the same ids
    import yaml

    reordered = _spec(problems=list(reversed(BASE["problems"])), seeds=[1, 0],
                      solvers=list(reversed(BASE["solvers"])))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(reordered))
    assert {t.id for t in expand(path)} == {t.id for t in tasks}
    # any setting that changes the result changes the id
    changed = expand(_spec(dtype="float64"))
    assert not {t.id for t in changed} & {t.id for t in tasks}


def test_duplicate_tasks_rejected():
    solver = {"name": "dps", "steps": 5, "samples": 4}
    with pytest.raises(ValueError, match="appears twice"):
        expand(_spec(solvers=[solver, dict(solver)]))


def test_missing_extra_names_the_pip_command():
    with pytest.raises(ImportError, match=r"pip install 'diffinv\[study\]'"):
        require("diffinv_no_such_module", extra="study", purpose="diffinv study")


def test_device_choice_respects_cuda_visible_devices():
    assert visible_gpus({}, device_count=4) == 4
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, device_count=4) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, device_count=4) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, device_count=4) == 0
    assert select_device("cpu", 3, n_gpus=2) == "cpu"
    assert select_device("cuda", 0, n_gpus=2) == "cuda:0"
    assert select_device("cuda", 3, n_gpus=2) == "cuda:1"
    assert select_device("cuda", "tcp://x", n_gpus=1) == "cuda:0"
    assert select_device("auto", 1, n_gpus=0) == "cpu"
    with pytest.raises(RuntimeError, match="no GPU"):
        select_device("cuda", 0, n_gpus=0)


def test_shipped_example_expands():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "study_small.yaml"
    tasks = expand(example)
    assert len(tasks) == 18
    assert {t.settings["problem"] for t in tasks} == {"gaussian-field", "phase-retrieval-cdp"}
