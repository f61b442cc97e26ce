"""benchmarks/calibration_domains.py: which tasks it runs (no task is executed here)."""


import pytest

from diffinv.study import expand


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("calibration_domains")


def test_phase_daps_runs_the_problems_own_settings(script):
    entry = script.solver_entry("daps", 50, 16, 4, "phase")
    assert entry["problem_defaults"] is True and entry["steps"] == 100
    (task,) = expand(script.domain_spec("phase", "daps", [1000], 50, 16, 4))
    assert task.settings["problem_defaults"] is True
    # the linear-Gaussian domains keep the fixed CG settings and --steps
    ct = script.solver_entry("daps", 50, 16, 4, "ct")
    assert ct["steps"] == 50 and ct["options"] == {"ode_steps": 1, "cg_max_iter": 20}
    assert ("phase", "daps") in script.STUDIES


def test_interleaved_specs_run_the_same_tasks_image_by_image(script):
    images = [1000, 1001, 1002]
    specs = [script.domain_spec(d, s, images, 20, 8, 2)
             for d, s in script.STUDIES if d not in ("mri", "phase-gaussian")]
    merged = script.interleaved_specs(specs)
    # one spec per image and distinct solver entry: smc, daps with CG steps, phase's own daps
    assert len(merged) == 3 * len(images)
    before = sorted(t.id for s in specs for t in expand(s))
    after = [t for s in merged for t in expand(s)]
    assert sorted(t.id for t in after) == before
    order = [t.settings["image"] for t in after]
    assert order == sorted(order)  # image-major across domains *and* solvers
    first = {(t.settings["problem"], t.settings["solver"]) for t in after
             if t.settings["image"] == 1000}
    assert len(first) == len(specs)  # every domain and solver at the first image


def test_phase_with_the_gaussian_prior_is_a_separate_domain(script):
    """``phase-gaussian``: the same problem with the fitted Gaussian prior (a density, so
    ``smc`` runs exact tempered SMC)."""
    (task,) = expand(script.domain_spec("phase-gaussian", "smc", [1000], 50, 64, 1))
    assert task.settings["problem"] == "phase-retrieval-cdp"
    assert task.settings["problem_options"]["prior"] == "gaussian"
