"""Shapes, gradients and settings of the compact UNet."""

import pytest
import torch

from diffinv.priors.networks.unet import UNet, UNetConfig

TINY = dict(base_width=8, width_mults=(1, 2), emb_dim=16)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("attention", [True, False])
def test_forward_backward_shapes(channels, attention):
    net = UNet(UNetConfig(channels=channels, attention=attention, **TINY))
    x = torch.randn(3, channels, 16, 16)
    out = net(x, torch.randn(3))
    assert out.shape == x.shape
    # zero-initialised output layer: the output starts at exactly zero
    assert float(out.detach().abs().max()) == 0.0
    # perturb the output layer so every parameter receives a gradient
    torch.nn.init.normal_(net.out_conv.weight, std=0.1)
    net(x, torch.randn(3)).square().sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing
    assert net.out_conv.weight.grad.abs().sum() > 0


def test_noise_conditioning_changes_output():
    torch.manual_seed(0)
    net = UNet(UNetConfig(**TINY))
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([-1.0])), net(x, torch.tensor([0.5])))


def test_default_size_is_compact():
    n = sum(p.numel() for p in UNet(UNetConfig()).parameters())
    assert 2e5 <= n <= 1e6


def test_config_round_trip_and_errors():
    cfg = UNetConfig(channels=2, width_mults=(1, 2, 2))
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.from_dict({"widht": 3})
    net = UNet(UNetConfig(**TINY))
    with pytest.raises(ValueError, match="channels|x:"):
        net(torch.zeros(1, 2, 8, 8), torch.zeros(1))
    # sizes that are not multiples of the downsampling factor are padded internally (issue
    # 14 replaced the former "multiples" error); the output keeps the input's size
    assert net(torch.zeros(1, 1, 9, 9), torch.zeros(1)).shape == (1, 1, 9, 9)
