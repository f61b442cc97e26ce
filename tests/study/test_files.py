"""Study inputs from measured files (globs, one problem per file or combined)."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.datasets.mri_io import write_bart_kspace
from diffinv.datasets.mri_phantoms import mri_phantom
from diffinv.operators.mri import birdcage_maps, fft2c
from diffinv.study.execute import clear_demo_cache, execute_task
from diffinv.study.spec import parse_spec
from diffinv.study.tasks import expand


def _bart_scan(folder, name, seed):
    """A 4-coil 32x32 BART k-space file (R=2 with a 12-line calibration centre)."""
    n, c = 32, 4
    x = mri_phantom((n, n), dtype=torch.complex64)
    k = fft2c(x[0] * birdcage_maps((n, n), c, dtype=torch.complex64))
    g = torch.Generator().manual_seed(seed)
    k = k + 0.02 * torch.complex(torch.randn(k.shape, generator=g),
                                 torch.randn(k.shape, generator=g))
    rows = torch.zeros(n, dtype=torch.bool)
    rows[::2] = True
    rows[n // 2 - 6 : n // 2 + 6] = True
    return write_bart_kspace(folder / name, k * rows[None, :, None], readout_inverted=True)


def _spec(files, **extra):
    return {"problems": [{"files": files, **extra}], "seeds": [0],
            "solvers": [{"name": "pigdm", "steps": 2, "samples": 2}]}


def test_a_glob_gives_one_problem_per_file_or_one_combined(tmp_path):
    for i in range(2):
        _bart_scan(tmp_path, f"scan{i}", i)
    spec = parse_spec(_spec(str(tmp_path / "scan*.cfl"), kind="mri"))
    (problem,) = spec.problems
    assert problem.name == "data:mri" and len(problem.file_groups) == 2
    assert all(g[0].endswith(".cfl") and g[0].startswith("/") for g in problem.file_groups)
    tasks = expand(spec)
    assert len(tasks) == 2 and tasks[0].id != tasks[1].id
    assert [t.settings["data_files"] for t in tasks] == [list(g) for g in problem.file_groups]
    combined = parse_spec(_spec([str(tmp_path / "scan0.cfl"), str(tmp_path / "scan1.cfl")],
                                combine=True))
    assert len(combined.problems[0].file_groups) == 1
    assert len(combined.problems[0].file_groups[0]) == 2


def test_file_entries_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"problems\[0\]\.files\[0\]: no file matches"):
        parse_spec(_spec(str(tmp_path / "nothing*.uvfits")))
    _bart_scan(tmp_path, "scan", 0)
    with pytest.raises(ValueError, match=r"problems\[0\]\.kind: expected one of"):
        parse_spec(_spec(str(tmp_path / "scan.cfl"), kind="pet"))
    with pytest.raises(ValueError, match=r"problems\[0\]\.combine"):
        parse_spec(_spec(str(tmp_path / "scan.cfl"), combine="yes"))
    with pytest.raises(ValueError, match=r"problems\[0\]"):
        parse_spec(_spec(str(tmp_path / "scan.cfl"), images=[0]))


def test_a_file_task_runs_without_truth(tmp_path):
    pytest.importorskip("nibabel")
    _bart_scan(tmp_path, "scan", 0)
    (task,) = expand(_spec(str(tmp_path / "scan.cfl")))
    clear_demo_cache()
    result = execute_task(task)
    assert result.arrays["mean"].shape == (2, 32, 32)
    assert math.isnan(result.metrics["psnr"]) and "truth" not in result.arrays
    assert math.isfinite(result.metrics["reduced_chi2"]) and result.metrics["reduced_chi2"] > 0
    meta = result.metadata["problem_metadata"]
    assert meta["kind"] == "mri" and meta["files"] == task.settings["data_files"]


def test_a_lognormal_file_task_reports_images(shared_data):
    """``prior: lognormal`` on a UVFITS file: sampled on the field's white noise, stored as
    images (Jy/pixel) like every other EHT task."""
    src = sorted(shared_data("eht2017_m87").glob("*095_lo*.uvfits"))[0]
    spec = {"problems": [{"files": str(src), "prior": "lognormal"}], "seeds": [0],
            "solvers": [{"name": "smc", "steps": 10, "samples": 8,
                         "options": {"rejuvenation_moves": 1}}]}
    (task,) = expand(spec)
    clear_demo_cache()
    result = execute_task(task)
    assert result.arrays["mean"].shape == (1, 32, 32) and (result.arrays["mean"] > 0).all()
    assert result.arrays["quantiles"].shape[1:] == (1, 32, 32)
    assert result.diagnostics["method"] == "tempered"
    assert 0 < result.metrics["reduced_chi2"] < 3
    assert result.metadata["problem_metadata"]["prior"] == "lognormal"
