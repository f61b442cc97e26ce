"""Real-size MRI and CT demos (built small here): shapes, learned default prior, --prior checks."""

from __future__ import annotations

import math
from importlib import resources

import pytest
import torch

from diffinv.demos import available_demos, get_demo
from diffinv.demos.prior_choice import check_prior_fits, prior_for_problem
from diffinv.demos.realsize import (
    CT_LIMITED_SIGMA_MAX,
    CT_LIMITED_STEPS,
    CT_PRIORS,
    CT_SOLVER_STEPS,
    HELD_OUT_SEED,
    MRI_PRIORS,
    held_out_images,
)
from diffinv.priors import LearnedPrior, list_shipped

MRI = ("mri-brain-r4", "mri-brain-r8")
CT = ("ct-sparse-view-128", "ct-limited-angle-128")


def test_registered_with_real_size_defaults():
    assert set(MRI + CT) <= set(available_demos())
    for name in MRI + CT:
        doc = get_demo(name).__doc__
        assert "128x128" in doc and "learned prior" in doc


@pytest.mark.parametrize("name", MRI)
def test_mri_demo_shapes_prior_and_data(name):
    demo = get_demo(name)(seed=3, size=32)
    p = demo.problem
    assert p.image_shape == (2, 32, 32) and p.y.shape == (1, 8, 32, 32) and p.y.is_complex()
    assert isinstance(demo.prior, LearnedPrior) and demo.prior.card["name"] in MRI_PRIORS
    assert demo.metadata["prior"] == demo.prior.card["name"]
    r = 4 if name.endswith("r4") else 8
    assert demo.metadata["acceleration"] == r and demo.metadata["coils"] == 8
    # the truth fits its own data at the noise level
    assert float(p.reduced_chi2(demo.x_true)) == pytest.approx(1.0, abs=0.15)
    mag = demo.to_image(demo.x_true)
    assert mag.shape == (1, 32, 32) and 0.05 < float(mag.max()) <= 1.0 + 1e-4


@pytest.mark.parametrize("name", CT)
def test_ct_demo_shapes_prior_and_data(name):
    demo = get_demo(name)(seed=2, size=32)
    p = demo.problem
    assert demo.x_true.shape == (1, 1, 32, 32) and float(demo.x_true.min()) >= 0
    assert isinstance(demo.prior, LearnedPrior)
    assert demo.prior.card["name"] == CT_PRIORS[0] == "ct-anatomy-128"
    assert demo.metadata["units"] == "1/mm" and demo.metadata["I0"] == 1e5
    assert 0.7 < float(p.reduced_chi2(demo.x_true)) < 1.3
    angles = p.operator.angles
    if name == "ct-sparse-view-128":
        assert len(angles) == 32 and float(angles.max()) < math.pi
    else:  # 120 views at 1 degree: a 120-degree arc, not a half turn
        assert len(angles) == 120
        assert float(angles.max() - angles.min()) == pytest.approx(math.radians(119), abs=1e-9)


def test_truth_is_held_out_and_independent_of_the_prior():
    a = get_demo("ct-sparse-view-128")(seed=1, size=32)
    path = resources.files("diffinv.priors") / "checkpoints" / "ct-phantom.pt"
    with resources.as_file(path) as file:
        b = get_demo("ct-sparse-view-128")(seed=1, size=32, prior=str(file))
    torch.testing.assert_close(a.x_true, b.x_true)
    torch.testing.assert_close(a.x_true, held_out_images("ct", 1, 32, seed=1))
    assert not torch.equal(a.x_true, held_out_images("ct", 1, 32, seed=2))
    assert b.metadata["prior"] == "ct-phantom"


def test_test_images_are_never_in_a_default_priors_training_pools():
    """The training pools of a registered generator are seeded ``seed * 1_000_003 + 7919 *
    pool + 1`` (diffinv.priors.data_sources); a training seed of 1 would put held-out image
    4 into the first pool."""
    held_out = {HELD_OUT_SEED + s for s in range(1000)}
    cards = {c["name"]: c for c in list_shipped()}
    for name in sorted({*MRI_PRIORS, *CT_PRIORS}):
        seed = int(cards[name]["seed"])
        pools = {seed * 1_000_003 + 7919 * k + 1 for k in range(1000)}
        assert not pools & held_out, name


def test_prior_switch_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="prior: 'natural-patches' is a prior of images in"):
        get_demo("ct-limited-angle-128")(size=32, prior="natural-patches")
    with pytest.raises(ValueError, match="channels=1"):
        get_demo("mri-brain-r4")(size=32, prior="ct-phantom")
    with pytest.raises(ValueError, match="neither a shipped prior"):
        get_demo("mri-brain-r8")(size=32, prior="no-such-prior")
    with pytest.raises(ValueError, match="arc_deg"):
        get_demo("ct-limited-angle-128")(size=32, arc_deg=200)


def test_size_limits_are_checked():
    class SmallPrior:
        channels, min_size, max_size, units = 1, 16, 64, "linear attenuation (1/mm)"

    check_prior_fits(SmallPrior(), "small", "p", (1, 64, 64), ("attenuation",), "1/mm")
    with pytest.raises(ValueError, match="sizes 16 to 64"):
        check_prior_fits(SmallPrior(), "small", "p", (1, 128, 128), ("attenuation",), "1/mm")
    # a callable is trusted as given (the Python API)
    assert prior_for_problem(SmallPrior, "p", (1, 128, 128), ("x",), "x") is SmallPrior


def test_ct_default_runs_differ_only_where_tuned():
    """Limited angle has its own tuned DAPS run; sparse view keeps the shared CT default."""
    sparse = get_demo("ct-sparse-view-128")(size=32).solver_defaults
    limited = get_demo("ct-limited-angle-128")(size=32).solver_defaults
    assert sparse["steps"] == CT_SOLVER_STEPS and "sigma_max" not in sparse["options"]
    assert limited["steps"] == CT_LIMITED_STEPS
    assert limited["options"]["sigma_max"] == CT_LIMITED_SIGMA_MAX
    assert {k: v for k, v in limited["options"].items() if k != "sigma_max"} == sparse["options"]
    # the limited-angle start lies inside the prior's noise range
    prior = get_demo("ct-limited-angle-128")(size=32).prior
    assert prior.sigma_min < CT_LIMITED_SIGMA_MAX < prior.sigma_max
