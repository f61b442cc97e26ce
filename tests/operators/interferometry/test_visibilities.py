import math

import pytest
import torch

from diffinv.operators.interferometry import Array, Observation
from diffinv.operators.interferometry.visibilities import (
    UAS_TO_RAD,
    Visibilities,
    pixel_coordinates,
)
from diffinv.operators.testing import check_adjoint, check_gradient

ADJOINT_TOL = 1e-6


def _obs():
    return Observation.simulate(
        Array.eht2017(),
        187.7059,
        12.3911,
        "2017-04-05",
        integration_s=60.0,
        scan_interval_s=1800.0,
    )


def _gaussian_image(n, fov_uas, fwhm_uas, flux):
    c = pixel_coordinates(n, fov_uas)  # radians
    s = fwhm_uas * UAS_TO_RAD / (2 * math.sqrt(2 * math.log(2)))
    mm, ll = torch.meshgrid(c, c, indexing="ij")
    g = torch.exp(-(ll**2 + mm**2) / (2 * s**2))
    d = fov_uas * UAS_TO_RAD / n
    # point samples of the brightness (Jy/sr) times the pixel area: Jy per pixel
    return (flux * g / (2 * math.pi * s**2) * d * d)[None, None], s


def test_gaussian_matches_analytic_fourier_transform():
    obs = _obs()
    # 300 uas field: the Gaussian (FWHM 40 uas) is truncated at 8.8 sigma
    x, s = _gaussian_image(96, 300.0, 40.0, 0.6)
    op = Visibilities(obs, 96, 300.0, pulse="delta")
    vis = op(x.double())[0]
    q2 = obs.u**2 + obs.v**2
    analytic = 0.6 * torch.exp(-2 * math.pi**2 * s**2 * q2)
    # sampled Gaussian: the DFT is a trapezoid rule, exact up to aliasing ~exp(-big)
    assert float((vis - analytic).abs().max()) < 1e-10 * 0.6
    assert float(vis.imag.abs().max()) < 1e-12  # centred symmetric image -> real visibilities


def test_box_pulse_on_pixel_integrated_gaussian():
    obs = _obs()
    n, fov, fwhm = 64, 200.0, 40.0
    d = fov / n
    s = fwhm / (2 * math.sqrt(2 * math.log(2)))
    edges = (torch.arange(n + 1, dtype=torch.float64) - n / 2) * d
    cdf = 0.5 * (1 + torch.erf(edges / (s * math.sqrt(2))))
    p = torch.diff(cdf)
    x = (0.6 * p[:, None] * p[None, :])[None, None]
    vis = Visibilities(obs, n, fov, pulse="box")(x)[0]
    srad = s * UAS_TO_RAD
    analytic = 0.6 * torch.exp(-2 * math.pi**2 * srad**2 * (obs.u**2 + obs.v**2))
    # a piecewise-constant image with exact pixel integrals: error of order (d / s)^2 / 24
    assert float((vis - analytic).abs().max()) < 0.01 * 0.6


def test_sign_convention_point_source_east_and_north():
    """A point 10 uas east (left) and north (up) has V = F exp(+2 pi i (u l + v m))."""
    uv = torch.tensor([[3e9, -1e9], [-2e9, 5e9]], dtype=torch.float64)
    n, fov = 32, 64.0  # 2 uas pixels; pixel centres at +-1, +-3, ... uas
    op = Visibilities(uv, n, fov, pulse="delta")
    x = torch.zeros(1, 1, n, n, dtype=torch.float64)
    i, j = 10, 10  # row 10 (north of centre), column 10 (east of centre)
    x[0, 0, i, j] = 1.0
    l_off = ((n - 1) / 2 - j) * fov / n * UAS_TO_RAD
    m_off = ((n - 1) / 2 - i) * fov / n * UAS_TO_RAD
    assert l_off > 0 and m_off > 0
    expected = torch.exp(2j * math.pi * (uv[:, 0] * l_off + uv[:, 1] * m_off))
    torch.testing.assert_close(op(x)[0], expected, rtol=1e-12, atol=1e-12)


def test_adjoint_and_dtypes():
    obs = _obs()
    for pulse in ("box", "triangle", "delta"):
        op = Visibilities(obs, 16, 160.0, pulse=pulse)
        assert check_adjoint(op, (2, 1, 16, 16), torch.float64) < ADJOINT_TOL
    op = Visibilities(obs, 16, 160.0)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    y32 = op(x)
    assert y32.dtype == torch.complex64 and y32.shape == (3, len(obs))
    y64 = op(x.double())
    assert float((y32 - y64).abs().max()) < 1e-4 * float(y64.abs().max())
    assert op.adjoint(y32).dtype == torch.float32
    # matrix consistency with the adjoint on the canonical basis
    a = op.to_matrix(dtype=torch.float64)
    y = torch.randn(1, len(obs), dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(op.adjoint(y).reshape(-1), (a.conj().T @ y[0]).real)


def test_conjugate_baselines_give_conjugate_visibilities():
    obs = _obs()
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    v = Visibilities(obs, 16, 160.0)(x)
    v_neg = Visibilities(-obs.uv, 16, 160.0)(x)
    torch.testing.assert_close(v_neg, v.conj())


def test_gradient_and_errors():
    obs = _obs()
    op = Visibilities(obs.uv[:20], 8, 100.0)
    assert check_gradient(op, (1, 1, 8, 8))
    with pytest.raises(ValueError, match="fov_uas"):
        Visibilities(obs, 8, -1.0)
    with pytest.raises(ValueError, match="pulse"):
        Visibilities(obs, 8, 100.0, pulse="gauss")
    with pytest.raises(ValueError, match="x"):
        op(torch.zeros(1, 8, 8))


def test_nufft_matches_dft_and_has_exact_adjoint():
    pytest.importorskip("finufft")
    obs = _obs()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 48, 48, dtype=torch.float64, generator=g)
    dft = Visibilities(obs, 48, 160.0, method="dft")
    nu = Visibilities(obs, 48, 160.0, method="nufft")
    v = dft(x)
    assert float((nu(x) - v).abs().max() / v.abs().max()) < 1e-10
    y = torch.randn(v.shape, dtype=torch.complex128, generator=g)
    ref = dft.adjoint(y)
    assert float((nu.adjoint(y) - ref).abs().max() / ref.abs().max()) < 1e-10
    assert check_adjoint(nu, (2, 1, 48, 48)) < ADJOINT_TOL
    v32 = nu(x.float())
    assert v32.dtype == torch.complex64
    assert float((v32 - v).abs().max() / v.abs().max()) < 1e-5
    small = Visibilities(obs.uv[:25], 8, 100.0, method="nufft")
    assert check_gradient(small, (1, 1, 8, 8))
    # gradient of the adjoint (used when a loss depends on A^H y)
    yy = torch.randn(1, 25, dtype=torch.complex128, generator=g).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: small.adjoint(t), (yy,), atol=1e-8)
    assert Visibilities(obs, 16, 160.0).method == "dft"  # auto picks the exact DFT when small


def test_visibilities_reuse_plans_with_fresh_results():
    pytest.importorskip("finufft")
    obs = _obs()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 32, 32, dtype=torch.float64, generator=g)
    op = Visibilities(obs, 32, 160.0, method="nufft")
    first = op(x)
    pair = op.nufft()
    plan = pair.plans.plan(2, 2, torch.complex128)
    again = op(x)
    assert op.nufft() is pair and pair.plans.plan(2, 2, torch.complex128) is plan
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    fresh = Visibilities(obs, 32, 160.0, method="nufft")(x)  # a new operator, new plans
    torch.testing.assert_close(first, fresh, rtol=1e-13, atol=1e-13)
    exact = Visibilities(obs, 32, 160.0, method="dft")(x)
    assert float((first - exact).abs().max() / exact.abs().max()) < 1e-10
    y = torch.randn(2, len(obs), dtype=torch.complex128, generator=g)
    fresh_adj = Visibilities(obs, 32, 160.0, method="nufft").adjoint(y)
    assert fresh_adj.shape == (2, 1, 32, 32)
    torch.testing.assert_close(op.adjoint(y), fresh_adj, rtol=1e-12, atol=1e-12)


def test_auto_picks_the_nufft_at_eht_sizes():
    pytest.importorskip("finufft")
    uv = torch.rand(4000, 2, dtype=torch.float64) * 1e9
    assert Visibilities(uv, 64, 160.0).method == "nufft"
