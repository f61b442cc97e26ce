import pytest
import torch

from diffinv.datasets.blackhole import crescent_image
from diffinv.operators.interferometry import Array, Observation, add_thermal_noise
from diffinv.operators.interferometry.closures import (
    ClosurePhases,
    LogClosureAmplitudes,
    closure_phase_chi2,
    log_closure_amplitude_chi2,
)
from diffinv.operators.interferometry.products import (
    TotalFlux,
    data_product_problem,
    product_reduced_chi2,
)
from diffinv.operators.interferometry.visibilities import Visibilities
from diffinv.operators.testing import check_adjoint


def _data():
    obs = Observation.simulate(
        Array.eht2017(),
        187.7059,
        12.3911,
        "2017-04-05",
        integration_s=60.0,
        scan_interval_s=1800.0,
    )
    x = crescent_image(16, 160.0, 42.0, 12.0, 0.5, 180.0, dtype=torch.float64)
    vis = add_thermal_noise(obs, Visibilities(obs, 16, 160.0)(x), torch.Generator().manual_seed(0))
    return obs.with_data(vis), x


def test_total_flux_adjoint():
    assert check_adjoint(TotalFlux(8), (3, 1, 8, 8)) < 1e-6


def test_combined_problem_matches_individual_products():
    obs, x = _data()
    weights = {"cphase": 2.0, "logcamp": 1.0, "amp": 0.5, "vis": 1.0, "flux": 1.0}
    prob = data_product_problem(obs, 16, 160.0, weights, total_flux=0.6, dtype=torch.float64)
    chi = product_reduced_chi2(prob, x)
    cp = ClosurePhases(obs, 16, 160.0)
    lca = LogClosureAmplitudes(obs, 16, 160.0)
    assert float(chi["cphase"][0]) == pytest.approx(
        float(closure_phase_chi2(cp(x)[0], cp.data, cp.sigma)), rel=1e-9
    )
    assert float(chi["logcamp"][0]) == pytest.approx(
        float(log_closure_amplitude_chi2(lca(x)[0], lca.data, lca.sigma)), rel=1e-9
    )
    for name in ("vis", "amp", "cphase", "logcamp"):
        assert 0.5 < float(chi[name][0]) < 1.6, name  # the truth fits at the noise level
    # the log-likelihood is the weighted sum of the parts
    ll = prob.log_likelihood(x)
    parts = [
        n.log_likelihood(a, b)
        for n, a, b in zip(
            prob.noise.noises, prob.noise._split(prob.y), prob.noise._split(prob.forward(x))
        )
    ]
    expected = sum(w * p for w, p in zip(prob.noise.weights, parts))
    torch.testing.assert_close(ll, expected)
    _, grad = prob.grad_log_likelihood(x.expand(2, -1, -1, -1))
    assert bool(torch.isfinite(grad).all())
    # a wrong image fits worse in every product
    worse = product_reduced_chi2(
        prob, crescent_image(16, 160.0, 30.0, 12.0, 0.5, 0.0, dtype=torch.float64)
    )
    assert all(float(worse[k][0]) > float(chi[k][0]) for k in chi)


def test_errors():
    obs, _ = _data()
    with pytest.raises(ValueError, match="total_flux"):
        data_product_problem(obs, 16, 160.0, {"flux": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        data_product_problem(obs, 16, 160.0, {"bispectrum": 1.0})


def test_every_posterior_reports_reduced_chi2_per_data_product():
    import diffinv
    from diffinv.priors import GaussianPrior

    obs, x = _data()
    weights = {"cphase": 1.0, "logcamp": 1.0, "flux": 1.0}
    prob = data_product_problem(obs, 16, 160.0, weights, total_flux=0.6, dtype=torch.float64)
    prior = GaussianPrior(x[0], 1e-6 * torch.eye(256, dtype=torch.float64))  # pins the truth
    post = diffinv.sample(prob, prior, "dps", n_samples=2, steps=3, dtype=torch.float64, zeta=0.0)
    by_product = post.diagnostics["reduced_chi2_mean_by_product"]
    assert set(by_product) == {"cphase", "logcamp", "flux"}
    expected = product_reduced_chi2(prob, post.mean[None])
    for name, value in by_product.items():
        assert value == pytest.approx(float(expected[name][0]), rel=1e-9)
    assert 0.3 < by_product["cphase"] < 2.0  # the pinned truth fits at the noise level
