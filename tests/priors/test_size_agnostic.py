"""Size-agnostic priors: any H x W (square or not, any divisibility), windowed attention,
the sampler's shape check, and shipped 32x32 checkpoints unchanged at 32x32."""

from pathlib import Path

import pytest
import torch

import diffinv
import diffinv.priors as priors
from diffinv.operators import GaussianNoise, Identity, InverseProblem
from diffinv.priors import GaussianPrior
from diffinv.priors.base import shape_mismatch
from diffinv.priors.checkpoints import LearnedPrior
from diffinv.priors.networks.unet import UNet, UNetConfig

TINY = dict(base_width=8, width_mults=(1, 2, 2), emb_dim=16)
REFERENCE = Path(__file__).parent / "data" / "shipped_outputs_32.pt"


def _random_net(**cfg) -> UNet:
    torch.manual_seed(0)
    net = UNet(UNetConfig(**{**TINY, **cfg}))
    for p in net.parameters():  # non-zero everywhere so every layer shapes the output
        torch.nn.init.normal_(p, std=0.15)
    return net.eval()


@pytest.mark.parametrize("hw", [(17, 23), (9, 32), (33, 8), (3, 5), (1, 1)])
def test_any_height_and_width(hw):
    net = _random_net()
    x = torch.randn(2, 1, *hw, requires_grad=True)
    out = net(x, torch.zeros(2))
    assert out.shape == x.shape and bool(torch.isfinite(out).all())
    out.square().sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)


def test_padding_only_when_needed():
    net = _random_net()
    x = torch.randn(1, 1, 12, 20)  # multiples of 4: the network runs unpadded
    with torch.no_grad():
        torch.testing.assert_close(net(x, torch.zeros(1)), net._forward(x, torch.zeros(1)),
                                   rtol=0, atol=0)
        odd = net(x[..., :11, :19], torch.zeros(1))
        direct = net._forward(torch.nn.functional.pad(x[..., :11, :19], (0, 1, 0, 1),
                                                      mode="reflect"), torch.zeros(1))
    torch.testing.assert_close(odd, direct[..., :11, :19], rtol=0, atol=0)


def test_windowed_attention_is_local_and_global_when_one_window():
    torch.manual_seed(1)
    glob = _random_net(attention_window=0).mid_att
    win = _random_net(attention_window=3).mid_att
    win.load_state_dict(glob.state_dict())
    win.norm = torch.nn.Identity()  # compare the attention alone, not the image-wide norm
    glob.norm = torch.nn.Identity()
    x = torch.randn(2, 16, 6, 7)
    with torch.no_grad():
        out = win(x)
        # window (0, 0) equals global attention on that 3x3 block alone
        torch.testing.assert_close(out[..., :3, :3], glob(x[..., :3, :3]))
        # the ragged last column (width 7 = 3 + 3 + 1) is a 3x1 window, padding masked
        torch.testing.assert_close(out[..., 3:6, 6:7], glob(x[..., 3:6, 6:7]))
        small = x[..., :3, :2]
        torch.testing.assert_close(win(small), glob(small), rtol=0, atol=0)


def test_config_validation():
    with pytest.raises(ValueError, match="attention_window"):
        UNet(UNetConfig(attention_window=-1))
    assert UNetConfig.from_dict({"channels": 1}).attention_window == 0  # old checkpoints


def _tiny_prior(image_size=8) -> LearnedPrior:
    net = _random_net()
    return LearnedPrior(net, {"sigma_data": 0.5}, {"image_size": image_size, "channels": 1,
                                                     "data_range": [-1, 1], "max_size": 64})


def test_learned_prior_limits_and_nonsquare_training_shape():
    prior = _tiny_prior([8, 12])
    assert prior.image_shape == (1, 8, 12) == prior.event_shape
    assert prior.channels == 1 and prior.min_size == 1 and prior.max_size == 64
    assert shape_mismatch(prior, (1, 30, 50)) is None
    assert "channels=1" in shape_mismatch(prior, (2, 30, 50))
    assert "to 64" in shape_mismatch(prior, (1, 30, 65))
    gauss = GaussianPrior(torch.zeros(1, 2, 2), torch.eye(4))
    assert shape_mismatch(gauss, (1, 2, 2)) is None
    assert "event_shape" in shape_mismatch(gauss, (1, 2, 3))


def test_sample_runs_a_size_agnostic_prior_at_a_new_size():
    prior = _tiny_prior(8)
    shape = (1, 10, 14)
    problem = InverseProblem(Identity(shape), GaussianNoise(0.5), torch.zeros(1, *shape))
    with torch.no_grad():
        post = diffinv.sample(problem, prior, solver="dps", n_samples=2, steps=3, seed=0)
    assert post.samples.shape == (2, *shape)
    wrong = InverseProblem(Identity((2, 10, 14)), GaussianNoise(0.5), torch.zeros(1, 2, 10, 14))
    with pytest.raises(ValueError, match="^prior: .*channels=1"):
        diffinv.sample(wrong, prior, solver="dps", n_samples=1, steps=2)
    fixed = InverseProblem(Identity((1, 2, 3)), GaussianNoise(0.5), torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="^prior: its event_shape"):
        diffinv.sample(fixed, GaussianPrior(torch.zeros(1, 2, 2), torch.eye(4)), steps=2)


@pytest.mark.parametrize("name", ["blackhole", "ct-phantom", "mri-phantom", "natural-patches"])
def test_shipped_priors_unchanged_at_32(name):
    """Outputs at 32x32 equal those saved from the fixed-size UNet before this change."""
    ref = torch.load(REFERENCE, weights_only=True)[name]
    p = priors.load(name)
    x = p.offset + p.scale * torch.randn((2, *p.image_shape),
                                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = p(x, torch.tensor([0.1, 1.0]) * p.scale)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # and they now run at other sizes
        assert p(x[..., :20, :27], torch.tensor([0.1, 1.0]) * p.scale).shape[-2:] == (20, 27)


def test_tiled_and_crop_vs_whole():
    from diffinv.priors.evaluation import crop_vs_whole_psnr, tiled

    x = torch.rand(2, 1, 20, 27)
    s = torch.full((2,), 0.1)
    calls = []

    def pointwise(y, sigma):  # per-pixel shrinkage: tiling cannot change it
        calls.append(tuple(y.shape[-2:]))
        return y / (1 + sigma[:, None, None, None] ** 2)

    torch.testing.assert_close(tiled(pointwise, x, s, 8), pointwise(x, s), rtol=0, atol=0)
    assert set(calls[:-1]) == {(8, 8)} and len(calls) - 1 == 3 * 4
    r = crop_vs_whole_psnr(pointwise, x, (0.0, 1.0), 8, sigmas_rel=(0.1,))
    assert r[0.1]["loss"] == 0.0

    def mean_removed(y, sigma):  # depends on the image-wide mean: tiling changes it
        return y - y.mean((-2, -1), keepdim=True) + 0.5

    r = crop_vs_whole_psnr(mean_removed, x + torch.linspace(0, 1, 27), (0.0, 2.0), 8,
                           sigmas_rel=(0.01,))
    assert r[0.01]["loss"] != 0.0
    with pytest.raises(ValueError, match="tile"):
        tiled(pointwise, x, s, 21)
