"""Coverage / conformal recalibration / |error|-std correlation computed from a study store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffinv
from diffinv.study import Store, execute_task, expand
from diffinv.study.conformal import (
    calibrated_correlation,
    calibration_summary,
    error_std_correlation,
    posterior_from_result,
    summary_markdown,
    write_calibration_plots,
)

IMAGES = [0, 1, 2, 3]
SPEC = {
    "name": "conformal",
    "problems": [{"name": "gaussian-field", "images": IMAGES}],
    "seeds": [0],
    "solvers": [{"name": "dps", "steps": 4, "samples": 6},
                {"name": "smc", "steps": 4, "samples": 6}],
    "coverage_levels": [0.5, 0.9],
    "save_samples": True,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = Store.open(tmp_path_factory.mktemp("conformal") / "store", create=True)
    for task in expand(SPEC):
        st.write(execute_task(task))
    return st


def test_summary_matches_direct_computation(store):
    rows = calibration_summary(store.root, calibration_images=[0, 2], levels=(0.5, 0.9))
    assert sorted(r.solver for r in rows) == ["dps", "smc"]
    results = store.results(arrays=True)
    for row in rows:
        assert row.calibration_images == (0, 2) and row.test_images == (1, 3)
        mine = [r for r in results if r.settings["solver"] == row.solver]
        cal = [r for r in mine if r.settings["image"] in (0, 2)]
        test = [r for r in mine if r.settings["image"] in (1, 3)]
        # raw coverage equals the per-task metric the study stored
        stored = np.mean([r.metrics["coverage_90"] for r in test])
        assert row.raw[0.9] == pytest.approx(stored, abs=1e-12)
        # and the prediction intervals' coverage is computed from the same samples
        pred = np.mean([posterior_from_result(r).coverage(
            torch.from_numpy(r.arrays["truth"]), 0.9, kind="prediction") for r in test])
        assert row.raw_prediction[0.9] == pytest.approx(pred, abs=1e-12)
        # the conformal scale is fitted on the calibration images only
        fit = diffinv.calibrate([posterior_from_result(r) for r in cal],
                                [torch.from_numpy(r.arrays["truth"]) for r in cal], level=0.9)
        assert row.scale[0.9] == pytest.approx(fit.scale)
        after = np.mean([fit.apply(posterior_from_result(r)).coverage(
            torch.from_numpy(r.arrays["truth"]), 0.9) for r in test])
        assert row.recalibrated[0.9] == pytest.approx(after)
        err = np.concatenate([np.abs(r.arrays["mean"] - r.arrays["truth"]).ravel()
                              for r in test])
        std = np.concatenate([r.arrays["std"].ravel() for r in test])
        assert row.correlation == pytest.approx(np.corrcoef(err, std)[0, 1], rel=1e-6)
        assert row.curve_raw.shape == row.curve_recalibrated.shape == (19,)
        assert row.abs_error.size == row.std.size == 2 * 256


def test_default_split_is_first_half_and_disjoint(store):
    for row in calibration_summary(store, levels=(0.9,)):
        assert row.calibration_images == (0, 1) and row.test_images == (2, 3)


def test_recalibration_widens_overconfident_dps(store):
    rows = {r.solver: r for r in calibration_summary(store.root, levels=(0.9,))}
    dps = rows["dps"]  # 4 steps of DPS: far from the posterior, intervals far too narrow
    assert dps.scale[0.9] > 1.0
    assert dps.recalibrated[0.9] > dps.raw[0.9]


def test_table_states_targets(store):
    rows = calibration_summary(store.root, levels=(0.5, 0.9))
    text = summary_markdown(rows, target=(0.88, 0.92), target_corr=0.5)
    assert text.count("\n| gaussian-field |") == 2
    assert "raw 90%" in text and "prediction 90%" in text and "conformal 90%" in text
    assert text.count("holds") + text.count("FAILS") == 4


def test_plots_are_png(store, tmp_path):
    pytest.importorskip("matplotlib")
    rows = calibration_summary(store.root)
    paths = write_calibration_plots(rows, tmp_path / "plots")
    assert [p.name for p in paths] == ["calibration_curves.png", "error_vs_std.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_store_without_samples_is_refused(tmp_path):
    spec = {**SPEC, "solvers": SPEC["solvers"][:1], "save_samples": False,
            "problems": [{"name": "gaussian-field", "images": [0, 1]}]}
    st = Store.open(tmp_path / "s", create=True)
    for task in expand(spec):
        st.write(execute_task(task))
    with pytest.raises(ValueError, match="save_samples"):
        calibration_summary(st)


def test_correlation_helper():
    a = np.arange(10.0)
    assert error_std_correlation(a, 2 * a + 1) == pytest.approx(1.0)
    assert error_std_correlation(a, -a) == pytest.approx(-1.0)
    assert np.isnan(error_std_correlation(a, np.ones(10)))
    with pytest.raises(ValueError, match="same size"):
        error_std_correlation(a, a[:5])


def test_calibrated_correlation_matches_simulated_calibrated_errors():
    # errors drawn exactly N(0, std^2): their |error|-std correlation is the formula's value
    g = np.random.default_rng(0)
    for std in (g.lognormal(0.0, 0.5, 200_000), g.uniform(0.1, 1.0, 200_000),
                np.repeat([0.1, 1.0], 100_000)):
        err = np.abs(g.normal(0.0, std))
        assert calibrated_correlation(std) == pytest.approx(error_std_correlation(err, std),
                                                            abs=0.01)
    assert 0.50 < calibrated_correlation(np.array([0.5, 1.5])) < 0.52  # CV 0.5
    assert np.isnan(calibrated_correlation(np.ones(7)))


def test_summary_reports_the_calibrated_correlation(store):
    rows = calibration_summary(store.root, levels=(0.9,))
    for row in rows:
        assert row.correlation_calibrated == pytest.approx(calibrated_correlation(row.std))
        assert f"{row.correlation_calibrated:.2f}" in summary_markdown([row])


def test_cross_fitted_folds_test_every_image_with_a_scale_from_the_others(store):
    rows = calibration_summary(store.root, levels=(0.9,), folds=2)
    results = store.results(arrays=True)
    for row in rows:
        assert row.folds == 2 and row.test_images == tuple(IMAGES)
        mine = {r.settings["image"]: r for r in results if r.settings["solver"] == row.solver}
        post = {i: posterior_from_result(r) for i, r in mine.items()}
        truth = {i: torch.from_numpy(r.arrays["truth"]) for i, r in mine.items()}
        covs, scales = [], []
        for test, cal in (([0, 1], [2, 3]), ([2, 3], [0, 1])):  # contiguous blocks
            fit = diffinv.calibrate([post[i] for i in cal], [truth[i] for i in cal], level=0.9)
            scales.append(fit.scale)
            covs += [fit.apply(post[i]).coverage(truth[i], 0.9) for i in test]
        assert row.recalibrated[0.9] == pytest.approx(np.mean(covs))
        assert row.scale[0.9] == pytest.approx(np.mean(scales))
        assert row.raw[0.9] == pytest.approx(np.mean([r.metrics["coverage_90"]
                                                      for r in mine.values()]))
        assert "2-fold x 4" in summary_markdown([row])
    with pytest.raises(ValueError, match="folds"):
        calibration_summary(store.root, folds=1)
    with pytest.raises(ValueError, match="not both"):
        calibration_summary(store.root, calibration_images=[0], folds=2)
    assert calibration_summary(store.root, folds=5) == []  # fewer images than folds
