"""Real M87 closures with the log-normal prior, sampled exactly by tempered SMC."""

from __future__ import annotations

import pytest
import torch

import diffinv
from diffinv.demos.eht_lognormal import build_m87_lognormal
from diffinv.operators import InverseProblem, LogNormalField
from diffinv.operators.interferometry.metrics import ring_metrics


@pytest.fixture
def demo(shared_data):
    one = sorted(shared_data("eht2017_m87").glob("*095_lo*.uvfits"))[0]
    return build_m87_lognormal(path=str(one), image_size=24, fov_uas=120.0)


def test_problem_is_on_the_fields_white_noise(demo):
    field = demo.problem.operator.inner
    assert isinstance(field, LogNormalField) and field.latent_dim == 24 * 24
    assert demo.prior.event_shape == (24 * 24,) and demo.metadata["prior"] == "lognormal"
    z = torch.randn(3, 24 * 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    images = demo.to_image(z)
    assert images.shape == (3, 24, 24) and bool((images > 0).all())
    assert torch.allclose(demo.problem.forward(z), demo.problem.operator.outer(images[:, None]))
    assert demo.solver_defaults["options"]["method"] == "tempered"
    # the image's bounds are not z's: sample() must not range-check the white noise
    assert "physical_range" not in demo.metadata
    assert demo.latent.physical_range == (0.0, float("inf"))
    assert torch.allclose(demo.latent.image_problem.forward(images[:, None]),
                          demo.problem.forward(z))


def test_tempered_smc_fits_the_closures_with_a_ring(demo):
    n = 24
    post = diffinv.sample(demo.problem, demo.prior, solver=demo.solver_defaults["solver"],
                          n_samples=n, steps=10, seed=0, dtype=torch.float64,
                          **{**demo.solver_defaults["options"], "rejuvenation_moves": 2,
                             "rejuvenation_leapfrog": 3})
    d = post.diagnostics
    assert min(d["ess_per_step"]) >= 0.1 * n
    images = demo.to_image(post.samples)
    w = post.weights.to(torch.float64)
    mean = (w[:, None, None] * images).sum(0)
    image_problem = InverseProblem(demo.problem.operator.outer, demo.problem.noise,
                                   demo.problem.y)
    assert float(image_problem.reduced_chi2(mean[None, None])[0]) < 1.5
    ring = ring_metrics(mean, fov_uas=120.0)
    assert ring.ok and 34.0 < ring.diameter_uas < 46.0, ring
