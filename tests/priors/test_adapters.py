"""Adapters: VP epsilon/v-prediction, EDM-format and deepinv denoisers -> D(x, sigma).

The VP networks are built here from an analytic Gaussian prior: given only ``(x_t, t)`` they
return the exact epsilon (or v) of the VP process at timestep ``t`` (fractional timesteps are
resolved with ``numpy.interp`` on ``log sigma_t``, independently of the adapter).  With the
correct sigma <-> timestep mapping the adapted ``D`` equals the Gaussian's exact denoiser.
"""

import numpy as np
import pytest
import torch

from diffinv.priors import GaussianPrior
from diffinv.priors.adapters import (
    DeepinvDenoiserPrior,
    EpsilonPredictionPrior,
    VPredictionPrior,
    cosine_alpha_bar,
    edm_prior,
    linear_alpha_bar,
)

N = 8


def _gaussian(mean=0.1):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(N, N, generator=g, dtype=torch.float64)
    cov = 0.2 * a @ a.T / N + 0.05 * torch.eye(N, dtype=torch.float64)
    return GaussianPrior(torch.full((1, 2, 4), mean, dtype=torch.float64), cov)


class _ExactVPNet(torch.nn.Module):
    """Exact eps- or v-prediction of a VP process whose data is ``GaussianPrior``."""

    def __init__(self, prior, alpha_bar, kind, learned_variance=False, timestep_scale=1.0):
        super().__init__()
        self.prior, self.kind = prior, kind
        self.log_sig = np.log(np.sqrt((1 - alpha_bar.numpy()) / alpha_bar.numpy()))
        self.learned_variance = learned_variance
        self.timestep_scale = timestep_scale

    def forward(self, x_t, t):
        idx = np.arange(len(self.log_sig), dtype=np.float64)
        t_index = t.double().numpy() / self.timestep_scale
        sigma = torch.from_numpy(np.exp(np.interp(t_index, idx, self.log_sig)))
        shape = (-1, 1, 1, 1)
        ab = (1 / (1 + sigma**2)).reshape(shape)
        x = x_t / ab.sqrt()  # VE variable x0 + sigma eps
        x0 = self.prior(x, sigma)
        eps = (x - x0) / sigma.reshape(shape)
        out = eps if self.kind == "eps" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
        if self.learned_variance:
            out = torch.cat([out, torch.full_like(out, 7.0)], dim=1)
        return out


SCHEDULES = {"linear": linear_alpha_bar(1000), "cosine": cosine_alpha_bar(200)}


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("kind", ["eps", "v"])
def test_vp_adapter_matches_exact_gaussian_denoiser(schedule, kind):
    ab = SCHEDULES[schedule]
    prior = _gaussian()
    net = _ExactVPNet(prior, ab, kind, learned_variance=(kind == "eps"), timestep_scale=0.5)
    cls = EpsilonPredictionPrior if kind == "eps" else VPredictionPrior
    adapted = cls(net, ab, interpolate=True, timestep_scale=0.5)
    g = torch.Generator().manual_seed(1)
    x0 = prior.sample(6, generator=g)
    sigma = torch.tensor([0.02, 0.1, 0.37, 1.0, 3.3, 25.0], dtype=torch.float64)
    x = x0 + sigma.reshape(-1, 1, 1, 1) * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(adapted(x, sigma), prior(x, sigma), rtol=1e-9, atol=1e-9)
    assert adapted.sigma_min < 0.02 and adapted.sigma_max > 25.0


def test_nearest_timestep_exact_on_grid_and_close_off_grid():
    ab = linear_alpha_bar(1000)
    prior = _gaussian()
    adapted = EpsilonPredictionPrior(_ExactVPNet(prior, ab, "eps"), ab, interpolate=False)
    grid_sigma = torch.sqrt((1 - ab) / ab)[[10, 200, 600]]
    x = torch.randn(3, 1, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(adapted(x, grid_sigma), prior(x, grid_sigma), rtol=1e-10,
                               atol=1e-10)
    off = grid_sigma * 1.0005
    err = (adapted(x, off) - prior(x, off)).abs().max()
    assert 0 < float(err) < 1e-2


def test_wrong_mapping_would_be_detected():
    # feeding the VP network the VE variable (a classic bug) breaks the match
    ab = linear_alpha_bar(1000)
    prior = _gaussian()
    net = _ExactVPNet(prior, ab, "eps")
    adapted = EpsilonPredictionPrior(lambda x_t, t: net(x_t * (1 + 0.0), t), ab)
    x = torch.randn(2, 1, 2, 4, dtype=torch.float64)
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64)
    good = adapted(x, sigma)
    u = x
    t = adapted.timestep(sigma)
    bad = u - sigma.reshape(-1, 1, 1, 1) * net(u, t)  # no 1/sqrt(1+sigma^2) scaling
    assert float((bad - prior(x, sigma)).abs().max()) > 1e-2
    torch.testing.assert_close(good, prior(x, sigma), rtol=1e-9, atol=1e-9)


def test_vp_adapter_data_range_and_sigma_zero():
    # network trained on [-1, 1]; user data in [0, 10] -> Gaussian in the user's frame
    ab = linear_alpha_bar(1000)
    prior_net = _gaussian(mean=0.0)
    adapted = EpsilonPredictionPrior(_ExactVPNet(prior_net, ab, "eps"), ab, data_range=(0, 10))
    user = GaussianPrior(torch.full((1, 2, 4), 5.0, dtype=torch.float64), 25.0 * prior_net.cov)
    x = 5 + 3 * torch.randn(3, 1, 2, 4, dtype=torch.float64)
    sigma = torch.tensor([0.0, 0.5, 4.0], dtype=torch.float64)
    out = adapted(x, sigma)
    torch.testing.assert_close(out[0], x[0])
    torch.testing.assert_close(out[1:], user(x[1:], sigma[1:]), rtol=1e-9, atol=1e-9)


def test_schedule_validation():
    with pytest.raises(ValueError, match="alpha_bar"):
        EpsilonPredictionPrior(lambda x, t: x, torch.tensor([0.5, 0.9]))
    with pytest.raises(ValueError, match="data_range"):
        EpsilonPredictionPrior(lambda x, t: x, linear_alpha_bar(10), data_range=(1, 1))


def test_edm_format_networks():
    prior = _gaussian(mean=0.0)
    x = torch.randn(2, 1, 2, 4, dtype=torch.float64)
    s = torch.tensor([0.1, 1.0], dtype=torch.float64)
    wrapped = edm_prior(lambda x, sigma: prior(x, sigma))
    torch.testing.assert_close(wrapped(x, 0.3), prior(x, 0.3))
    # raw F from the exact D: F = (D - c_skip x) / c_out evaluated at x = u / c_in
    sd = 0.5

    def raw(u, c_noise):
        sigma = torch.exp(4 * c_noise)
        sv = sigma.reshape(-1, 1, 1, 1)
        xx = u * torch.sqrt(sv**2 + sd**2)
        c_skip = sd**2 / (sv**2 + sd**2)
        c_out = sv * sd / torch.sqrt(sv**2 + sd**2)
        return (prior(xx, sigma) - c_skip * xx) / c_out

    torch.testing.assert_close(edm_prior(raw, sigma_data=sd)(x, s), prior(x, s), rtol=1e-9,
                               atol=1e-9)


class _DeepinvStyleGaussian(torch.nn.Module):
    """A deepinv-style denoiser ``model(y, sigma)`` on [0, 1]: exact for N(0.5, v I)."""

    def __init__(self, v):
        super().__init__()
        self.v = v

    def forward(self, y, sigma):
        s = torch.as_tensor(sigma, dtype=y.dtype).reshape(-1, 1, 1, 1)
        return 0.5 + self.v / (self.v + s**2) * (y - 0.5)


def test_deepinv_denoiser_frame_mapping():
    v = 0.02
    lo, hi = -3.0, 5.0
    w = hi - lo
    adapted = DeepinvDenoiserPrior(_DeepinvStyleGaussian(v), data_range=(lo, hi))
    user = GaussianPrior(torch.full((1, 2, 4), lo + 0.5 * w, dtype=torch.float64),
                         v * w**2 * torch.eye(N, dtype=torch.float64))
    x = 1 + 2 * torch.randn(3, 1, 2, 4, dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.8, 3.0], dtype=torch.float64)
    torch.testing.assert_close(adapted(x, sigma), user(x, sigma), rtol=1e-12, atol=1e-12)
    assert adapted.sigma_max == pytest.approx(w)


def test_real_deepinv_drunet_as_prior():
    import deepinv as dinv  # CI installs deepinv: this test must run, not skip
    torch.manual_seed(0)
    model = dinv.models.DRUNet(in_channels=1, out_channels=1, nc=(8, 8, 8, 8), nb=1,
                               pretrained=None)
    prior = DeepinvDenoiserPrior(model, data_range=(0.0, 2.0))
    x = torch.rand(2, 1, 16, 16) * 2
    sigma = torch.tensor([0.1, 0.4])
    out = prior(x, sigma)
    assert out.shape == x.shape and torch.isfinite(out).all()
    ref = 2.0 * model(x / 2.0, sigma / 2.0)
    torch.testing.assert_close(out, ref)
    # the noise level is used per item (batched sigma reaches the network)
    assert not torch.allclose(prior(x[:1], sigma[:1]), prior(x[:1], sigma[1:]))


class _TinyEpsNet(torch.nn.Module):
    """A small learnable eps-network ``net(x_t, t)`` (weights saved to a test checkpoint)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)  # 2 channels: eps and a variance
        self.t_gain = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x_t, t):
        return self.conv(x_t) * (1 + self.t_gain * t.reshape(-1, 1, 1, 1) / 1000)


def test_vp_prior_from_local_checkpoint(tmp_path):
    from diffinv.priors.adapters import edm_prior_from_checkpoint, vp_prior_from_checkpoint

    torch.manual_seed(0)
    trained = _TinyEpsNet()
    with torch.no_grad():
        trained.t_gain.fill_(0.7)
    path = tmp_path / "ema.pt"
    torch.save({"ema": trained.state_dict(), "step": 5}, path)
    prior = vp_prior_from_checkpoint(path, _TinyEpsNet(), prediction="epsilon")
    reference = EpsilonPredictionPrior(trained, linear_alpha_bar(1000))
    x = torch.randn(2, 1, 6, 6)
    s = torch.tensor([0.3, 2.0])
    with torch.no_grad():
        torch.testing.assert_close(prior(x, s), reference(x, s))
    with pytest.raises(ValueError, match="prediction"):
        vp_prior_from_checkpoint(path, _TinyEpsNet(), prediction="x0")
    with pytest.raises(FileNotFoundError, match="path"):
        vp_prior_from_checkpoint(tmp_path / "none.pt", _TinyEpsNet())
    conv = torch.nn.Conv2d(1, 1, 1)
    torch.save(conv.state_dict(), tmp_path / "edm.pt")

    class Raw(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1, 1, 1, 1))
            self.bias = torch.nn.Parameter(torch.zeros(1))

        def forward(self, u, c):
            return torch.nn.functional.conv2d(u, self.weight, self.bias)

    edm = edm_prior_from_checkpoint(tmp_path / "edm.pt", Raw(), sigma_data=0.5)
    assert torch.equal(edm.net.weight, conv.weight)


def test_vp_adapters_run_a_float32_network_in_a_float64_run():
    # a float32 checkpoint sampled with dtype=float64 (exactness studies): the network sees
    # its own dtype, the adapter returns the caller's
    torch.manual_seed(0)
    net = _TinyEpsNet()
    x = torch.randn(2, 1, 6, 6)
    s = torch.tensor([0.3, 2.0])
    for cls in (EpsilonPredictionPrior, VPredictionPrior):
        prior = cls(net, linear_alpha_bar(1000))
        with torch.no_grad():
            out64 = prior(x.double(), s.double())
            out32 = prior(x, s)
        assert out64.dtype == torch.float64
        torch.testing.assert_close(out64, out32.double(), rtol=1e-5, atol=1e-5)


def test_real_deepinv_ncsnpp_as_prior():
    import deepinv as dinv

    torch.manual_seed(0)
    model = dinv.models.NCSNpp(img_resolution=16, in_channels=1, out_channels=1,
                               model_channels=32, channel_mult=(1, 1), num_blocks=1,
                               attn_resolutions=(), augment_dim=0, dropout=0.0,
                               pretrained=None).eval()
    prior = DeepinvDenoiserPrior(model, data_range=(-1.0, 1.0))
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    sigma = torch.tensor([0.2, 0.6])
    with torch.no_grad():
        out = prior(x, sigma)
        ref = -1.0 + 2.0 * model((x + 1) / 2, sigma / 2)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out, ref)
