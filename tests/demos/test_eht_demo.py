import pytest

from diffinv.demos import available_demos, get_demo
from diffinv.operators.interferometry import product_reduced_chi2, ring_metrics


def test_eht_crescent_vis_exact_posterior_recovers_ring():
    assert {"eht-crescent", "eht-m87"} <= set(available_demos())
    demo = get_demo("eht-crescent")(seed=0)
    assert demo.metadata["exact_posterior"] and demo.metadata["units"] == "Jy/pixel"
    assert demo.problem.is_linear_gaussian
    assert float(demo.problem.reduced_chi2(demo.x_true)[0]) == pytest.approx(1.0, abs=0.2)
    post = demo.prior.posterior(demo.problem)
    mean = post.mean.reshape(1, 1, 32, 32)
    assert 0.5 < float(demo.problem.reduced_chi2(mean.float())[0]) < 1.5
    m = ring_metrics(mean, demo.metadata["fov_uas"])
    assert m.diameter_uas == pytest.approx(42.0, rel=0.1)
    assert abs((m.position_angle_deg - 180 + 180) % 360 - 180) < 20
    assert demo.to_image(demo.x_true).shape == (1, 32, 32)


def test_eht_crescent_closures():
    demo = get_demo("eht-crescent")(seed=1, data="closures")
    chi = product_reduced_chi2(demo.problem, demo.x_true)
    assert set(chi) == {"cphase", "logcamp", "flux"}
    assert 0.6 < float(chi["cphase"][0]) < 1.5 and 0.6 < float(chi["logcamp"][0]) < 1.5
    with pytest.raises(ValueError, match="data"):
        get_demo("eht-crescent")(data="bispectra")


def test_eht_m87_demo(shared_data, monkeypatch):
    root = shared_data("eht2017_m87")
    monkeypatch.setenv("DIFFINV_SHARED_DATA", str(root.parent))
    demo = get_demo("eht-m87")()
    assert demo.x_true is None and demo.metadata["source"] == "M87"
    assert demo.problem.y.shape[1] > 100
    # every file in the folder, labelled from the files themselves; the learned prior
    labels = {(lab["date"], lab["band"]) for lab in demo.metadata["observations"]}
    assert labels == {(d, b) for d in ("2017-04-05", "2017-04-06") for b in ("lo", "hi")}
    assert "2017-04-06 hi" in demo.description and "April 5, low band" not in demo.description
    assert getattr(demo.prior, "card", {}).get("name") == "blackhole"
    one = sorted(root.glob("*096_hi*.uvfits"))[0]
    single = get_demo("eht-m87")(path=str(one))
    assert [lab["date"] for lab in single.metadata["observations"]] == ["2017-04-06"]
    monkeypatch.delenv("DIFFINV_SHARED_DATA")
    with pytest.raises(FileNotFoundError, match="DIFFINV_SHARED_DATA"):
        get_demo("eht-m87")()


def test_eht_crescent_random_truth_with_learned_prior():
    import torch

    from diffinv.datasets.blackhole import random_blackhole_images

    demo = get_demo("eht-crescent")(seed=1001, truth="random", prior="learned")
    expected = random_blackhole_images(1, 32, 160.0, generator=torch.Generator().manual_seed(1001),
                                       dtype=torch.float64).float()
    torch.testing.assert_close(demo.x_true, expected)
    assert demo.problem.is_linear_gaussian
    assert float(demo.problem.reduced_chi2(demo.x_true)[0]) == pytest.approx(1.0, abs=0.2)
    assert tuple(demo.prior.image_shape) == (1, 32, 32)  # the shipped blackhole prior
    assert not demo.metadata["exact_posterior"] and demo.metadata["truth"] == "random"
    other = get_demo("eht-crescent")(seed=1002, truth="random", prior="learned")
    assert not torch.equal(other.x_true, demo.x_true)
    with pytest.raises(ValueError, match="truth"):
        get_demo("eht-crescent")(truth="disk")
    with pytest.raises(ValueError, match="prior"):
        get_demo("eht-crescent")(prior="flat")
    with pytest.raises(ValueError, match="image_size"):
        get_demo("eht-crescent")(image_size=16, prior="learned")
