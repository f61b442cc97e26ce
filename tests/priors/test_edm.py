"""EDM preconditioning against the formulas of Karras et al. (2022), Table 1."""

import math

import pytest
import torch

from diffinv.priors import GaussianPrior
from diffinv.priors.edm import EDMDenoiser, edm_coefficients, edm_loss_weight


@pytest.mark.parametrize("sigma", [0.002, 0.1, 0.5, 1.7, 80.0])
@pytest.mark.parametrize("sigma_data", [0.5, 0.3])
def test_coefficients_match_paper(sigma, sigma_data):
    c_skip, c_out, c_in, c_noise = edm_coefficients(torch.tensor(sigma, dtype=torch.float64),
                                                    sigma_data)
    assert float(c_skip) == pytest.approx(sigma_data**2 / (sigma**2 + sigma_data**2), rel=1e-12)
    assert float(c_out) == pytest.approx(sigma * sigma_data / math.sqrt(sigma_data**2 + sigma**2),
                                         rel=1e-12)
    assert float(c_in) == pytest.approx(1 / math.sqrt(sigma**2 + sigma_data**2), rel=1e-12)
    assert float(c_noise) == pytest.approx(0.25 * math.log(sigma), rel=1e-12)
    # the effective training target of F has unit variance: c_in^2 (sigma^2 + sigma_d^2) = 1
    assert float(c_in**2 * (sigma**2 + sigma_data**2)) == pytest.approx(1.0, rel=1e-12)
    w = edm_loss_weight(torch.tensor(sigma, dtype=torch.float64), sigma_data)
    assert float(w) == pytest.approx(1 / float(c_out) ** 2, rel=1e-12)


class _Zero(torch.nn.Module):
    def forward(self, x, c_noise):
        assert c_noise.shape == (x.shape[0],)
        return torch.zeros_like(x)


def test_zero_network_is_exact_gaussian_denoiser_in_user_frame():
    # With F = 0, D = c_skip x is the exact posterior mean for data N(0, sigma_d^2) in the
    # normalised frame; in the user's frame that is N(offset, (scale sigma_d)^2).
    sd, offset, scale = 0.4, 3.0, 0.02
    d = EDMDenoiser(_Zero(), sigma_data=sd, offset=offset, scale=scale)
    n = 12
    gauss = GaussianPrior(torch.full((1, 2, 6), offset, dtype=torch.float64),
                          (scale * sd) ** 2 * torch.eye(n, dtype=torch.float64))
    x = offset + 0.05 * torch.randn(5, 1, 2, 6, dtype=torch.float64)
    sigma = torch.tensor([0.001, 0.005, 0.01, 0.03, 0.2], dtype=torch.float64)
    torch.testing.assert_close(d(x, sigma), gauss(x, sigma), rtol=1e-12, atol=1e-12)


def test_sigma_zero_returns_input_and_gradients_flow():
    net = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    d = EDMDenoiser(lambda u, c: net(u), sigma_data=0.5)
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.0, 0.3, 2.0], dtype=torch.float64)
    out = d(x, sigma)
    torch.testing.assert_close(out[0], x[0])
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_float64_input_runs_float32_network():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, u, c):
            assert u.dtype == torch.float32
            return self.conv(u)

    d = EDMDenoiser(Net(), sigma_data=0.5)
    out = d(torch.randn(2, 1, 4, 4, dtype=torch.float64), 0.5)
    assert out.dtype == torch.float64


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma_data"):
        EDMDenoiser(_Zero(), sigma_data=0.0)
    with pytest.raises(ValueError, match="scale"):
        EDMDenoiser(_Zero(), scale=-1.0)
    with pytest.raises(ValueError, match="sigma"):
        EDMDenoiser(_Zero())(torch.zeros(2, 1, 4, 4), torch.tensor([1.0, -1.0]))
