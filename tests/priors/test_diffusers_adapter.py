"""diffusers ``UNet2DModel`` + DDPM/DDIM scheduler adapter.

1. Analytic case: a network returning, in ``UNet2DModel``'s output type, the exact epsilon /
   v / x0 of the VP process of a Gaussian prior under the real ``DDPMScheduler`` schedule;
   the adapted ``D`` must equal the Gaussian's exact denoiser.
2. A tiny randomly initialised ``UNet2DModel``: at grid timesteps ``D`` equals the
   ``pred_original_sample`` of diffusers' own DDPM and DDIM ``step`` for every prediction
   type, also at sizes that are not multiples of the UNet's downsampling factor.
3. A ``save_pretrained`` folder loads offline and gives the same prior.
"""

import math

import pytest
import torch

from diffinv.priors import GaussianPrior

diffusers = pytest.importorskip("diffusers")
from diffusers.models.unets.unet_2d import UNet2DOutput  # noqa: E402

from diffinv.priors.diffusers_adapter import (  # noqa: E402
    diffusers_prior,
    diffusers_prior_from_pretrained,
)

KINDS = ("epsilon", "v_prediction", "sample")


def _gaussian():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 8, generator=g, dtype=torch.float64)
    cov = 0.2 * a @ a.T / 8 + 0.05 * torch.eye(8, dtype=torch.float64)
    return GaussianPrior(torch.full((1, 2, 4), 0.1, dtype=torch.float64), cov)


class _ExactUNet(torch.nn.Module):
    """Exact VP predictions of a Gaussian, returned as diffusers' ``UNet2DOutput``."""

    def __init__(self, prior, alpha_bar, kind):
        super().__init__()
        self.prior, self.kind = prior, kind
        self.log_sig = 0.5 * torch.log((1 - alpha_bar) / alpha_bar)

    def forward(self, x_t, t):
        t = t.double().reshape(-1)
        lo = t.floor().long().clamp(0, len(self.log_sig) - 2)
        frac = t - lo
        sigma = torch.exp(self.log_sig[lo] * (1 - frac) + self.log_sig[lo + 1] * frac)
        ab = (1 / (1 + sigma**2)).reshape(-1, 1, 1, 1)
        x = x_t / ab.sqrt()
        x0 = self.prior(x, sigma)
        eps = (x - x0) / sigma.reshape(-1, 1, 1, 1)
        out = {"epsilon": eps, "sample": x0,
               "v_prediction": ab.sqrt() * eps - (1 - ab).sqrt() * x0}[self.kind]
        return UNet2DOutput(sample=out)


@pytest.mark.parametrize("kind", KINDS)
def test_matches_exact_gaussian_denoiser(kind):
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, prediction_type=kind)
    ab = sched.alphas_cumprod.double()
    prior = _gaussian()
    adapted = diffusers_prior(_ExactUNet(prior, ab, kind), sched)
    g = torch.Generator().manual_seed(1)
    x0 = prior.sample(5, generator=g)
    sigma = torch.tensor([0.02, 0.3, 1.0, 4.0, 40.0], dtype=torch.float64)
    x = x0 + sigma.reshape(-1, 1, 1, 1) * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(adapted(x, sigma), prior(x, sigma), rtol=1e-8, atol=1e-8)


def _tiny_unet():
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    return unet.eval()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheduler", ["DDPMScheduler", "DDIMScheduler"])
def test_equals_scheduler_pred_original_sample(kind, scheduler):
    unet = _tiny_unet()
    sched = getattr(diffusers, scheduler)(num_train_timesteps=1000, prediction_type=kind,
                                          clip_sample=False)
    sched.set_timesteps(50)
    prior = diffusers_prior(unet, sched)
    g = torch.Generator().manual_seed(2)
    for t in (int(v) for v in sched.timesteps[[1, 25, 48]]):  # on the inference grid
        ab = float(sched.alphas_cumprod[t])
        sigma = math.sqrt((1 - ab) / ab)
        x = torch.randn(2, 1, 9, 13, generator=g) * math.sqrt(1 + sigma**2)  # VE frame
        x_t = math.sqrt(ab) * x
        with torch.no_grad():
            out = prior(x, torch.full((2,), sigma))
            pad = torch.nn.functional.pad(x_t, (0, 1, 0, 1), mode="reflect")
            out_net = unet(pad, t).sample[..., :9, :13]
            ref = sched.step(out_net, t, x_t).pred_original_sample
        torch.testing.assert_close(out, ref, rtol=2e-4, atol=2e-4)


def test_from_pretrained_folder(tmp_path):
    unet = _tiny_unet()
    sched = diffusers.DDIMScheduler(num_train_timesteps=100, prediction_type="v_prediction")
    unet.save_pretrained(tmp_path / "unet")
    sched.save_pretrained(tmp_path / "scheduler")
    loaded = diffusers_prior_from_pretrained(tmp_path, scheduler="ddim", data_range=(0, 1))
    direct = diffusers_prior(unet, sched, data_range=(0, 1))
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, torch.tensor([0.2])), direct(x, torch.tensor([0.2])))
    with pytest.raises(FileNotFoundError, match="path"):
        diffusers_prior_from_pretrained(tmp_path / "nope")
    with pytest.raises(ValueError, match="prediction_type"):
        diffusers_prior(unet, sched, prediction_type="flow")
