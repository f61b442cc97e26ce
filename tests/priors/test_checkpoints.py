"""Our checkpoint format, local loading, and the shipped priors (offline package data)."""

import json
from importlib import resources

import pytest
import torch

import diffinv.priors as priors
from diffinv.priors.checkpoints import LearnedPrior, load_prior, save_prior
from diffinv.priors.networks.unet import UNet, UNetConfig

SHIPPED = ("blackhole", "ct-phantom", "mri-phantom", "natural-patches", "ct-anatomy",
           "mri-anatomy", "blackhole-64", "ct-anatomy-128")
COMPLEX = ("mri-phantom", "mri-anatomy")


def _tiny_prior():
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=2, base_width=8, width_mults=(1, 2), emb_dim=16))
    torch.nn.init.normal_(net.out_conv.weight, std=0.1)
    return LearnedPrior(net, {"sigma_data": 0.4, "offset": 0.0, "scale": 1.0,
                              "sigma_min": 0.002, "sigma_max": 80.0},
                        {"dataset": "mri-phantom", "image_size": 8, "channels": 2,
                         "units": "u", "data_range": [-1, 1], "is_complex": True},
                        {"note": "test"})


def test_save_load_round_trip(tmp_path):
    prior = _tiny_prior()
    path = save_prior(prior, tmp_path / "p.pt")
    loaded = load_prior(path)
    assert loaded.image_shape == (2, 8, 8) and loaded.is_complex
    assert loaded.card == {"note": "test"} and loaded.sigma_data == 0.4
    x = torch.randn(3, 2, 8, 8)
    s = torch.tensor([0.1, 0.5, 2.0])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, s), prior(x, s), rtol=0, atol=0)
    assert isinstance(priors.load(str(path)), LearnedPrior)
    assert [p.name for p in tmp_path.iterdir()] == ["p.pt"]  # no temporary files left


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a shipped prior"):
        priors.load("no-such-prior")
    with pytest.raises(FileNotFoundError, match="path"):
        load_prior(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": "other"}, bad)
    with pytest.raises(ValueError, match="not a diffinv prior"):
        load_prior(bad)


def _shipped_names():
    return [c["name"] for c in priors.list_shipped()]


def test_expected_priors_are_shipped():
    missing = set(SHIPPED) - set(_shipped_names())
    assert not missing, f"shipped priors missing: {sorted(missing)}"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_prior_loads_offline_with_its_convention(name):
    folder = resources.files("diffinv.priors") / "checkpoints"
    ckpt = folder / f"{name}.pt"
    assert ckpt.is_file()
    assert len(ckpt.read_bytes()) < 5 * 2**20  # a few MB at most
    card = json.loads((folder / f"{name}.json").read_text())
    assert (folder / f"{name}.md").is_file()
    for key in ("generator", "steps", "image_shape", "heldout_denoising_psnr_db", "licence"):
        assert card[key], key
    prior = priors.load(name)
    c, h, w = prior.image_shape
    assert c == (2 if name in COMPLEX else 1) and h == w
    assert prior.is_complex == (name in COMPLEX)
    lo, hi = prior.data_range
    assert hi > lo and prior.units
    x = prior.training_samples(8, seed=1)
    assert x.shape == (8, c, h, w)
    assert torch.equal(x, prior.training_samples(8, seed=1))
    # the prior denoises its own data: error well below the noise at sigma = 0.2 x range
    sigma = 0.2 * (hi - lo)
    g = torch.Generator().manual_seed(0)
    y = x + sigma * torch.randn(x.shape, generator=g)
    with torch.no_grad():
        d = prior(y, torch.full((8,), sigma))
    assert float((d - x).pow(2).mean()) < 0.5 * float((y - x).pow(2).mean())


@pytest.mark.parametrize("name,dataset", [("ct-anatomy", "ct-anatomy"),
                                          ("mri-anatomy", "mri-anatomy")])
def test_anatomy_priors_denoise_whole_128_images(name, dataset):
    """The crop-trained anatomy priors are meant for whole 128-320 pixel images."""
    from diffinv.datasets.registry import get_dataset

    prior = priors.load(name)
    assert prior.image_shape[1] < 128  # trained on crops
    card = json.loads((resources.files("diffinv.priors") / "checkpoints" / f"{name}.json"
                       ).read_text())
    for key in ("crop", "meant_for", "limits", "generator_version"):
        assert card[key], key
    x = get_dataset(dataset).sample(2, 128, torch.Generator().manual_seed(4242))
    lo, hi = prior.data_range
    sigma = 0.1 * (hi - lo)
    y = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        d = prior(y, torch.full((2,), sigma))
    assert d.shape == x.shape
    assert float((d - x).pow(2).mean()) < 0.25 * float((y - x).pow(2).mean())
