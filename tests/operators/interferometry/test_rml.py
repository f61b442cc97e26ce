import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.operators.interferometry import (
    Array,
    Observation,
    add_thermal_noise,
    apply_station_gains,
    random_station_gains,
)
from diffinv.operators.interferometry.metrics import ring_metrics
from diffinv.operators.interferometry.rml import gaussian_image, rml_closure_imaging
from diffinv.operators.interferometry.visibilities import Visibilities


def test_closure_only_rml_recovers_ring_diameter():
    obs = Observation.simulate(
        Array.eht2017(),
        187.7059,
        12.3911,
        "2017-04-05",
        integration_s=60.0,
        scan_interval_s=900.0,
    )
    truth = crescent_image(64, 160.0, 42.0, 10.0, 0.5, 180.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    vis = Visibilities(obs, 64, 160.0)(truth)
    # station gains with random phases and 20 % amplitude errors: only closures survive
    vis = apply_station_gains(obs, vis, random_station_gains(obs, 0.2, 180.0, generator=g))
    data = obs.with_data(add_thermal_noise(obs, vis, g))
    res = rml_closure_imaging(data, 32, 160.0, total_flux=0.6, rounds=3, iterations=100)
    m = ring_metrics(res.image, 160.0)
    assert m.diameter_uas == pytest.approx(42.0, rel=0.10)
    assert abs((m.position_angle_deg - 180.0 + 180) % 360 - 180) < 30
    assert res.chi2["cphase"] < 2.0 and res.chi2["logcamp"] < 2.0
    assert float(res.image.sum()) == pytest.approx(0.6, rel=0.05)
    assert float(res.image.min()) > 0
    # the initial Gaussian fits far worse than the result
    assert res.history[-1] < res.history[0]


def test_gaussian_image_and_errors():
    img = gaussian_image(32, 160.0, 50.0, 0.6)
    assert float(img.sum()) == pytest.approx(0.6)
    torch.testing.assert_close(img, img.flip(-1).flip(-2))
    obs = Observation.simulate(Array.eht2017(), 187.7, 12.4, "2017-04-05", scan_interval_s=7200.0)
    with pytest.raises(ValueError, match="optimizer"):
        rml_closure_imaging(obs, optimizer="sgd")
    with pytest.raises(ValueError, match="unknown"):
        rml_closure_imaging(obs, reg_weights={"entropy": 1.0})


def test_rml_adam_lowers_objective():
    obs = Observation.simulate(
        Array.eht2017(),
        187.7059,
        12.3911,
        "2017-04-05",
        integration_s=60.0,
        scan_interval_s=1800.0,
    )
    truth = crescent_image(32, 160.0, 42.0, 10.0, 0.5, 180.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    data = obs.with_data(add_thermal_noise(obs, Visibilities(obs, 32, 160.0)(truth), g))
    one = rml_closure_imaging(data, 16, 160.0, rounds=1, iterations=2, optimizer="adam")
    more = rml_closure_imaging(data, 16, 160.0, rounds=1, iterations=60, optimizer="adam")
    assert more.history[-1] < one.history[-1]
    assert more.chi2["cphase"] < one.chi2["cphase"]
