"""Non-Cartesian MRI: NUFFT backends, exact adjoint, Toeplitz normal, sigpy agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffinv.operators.mri import (
    MultiCoilMRI,
    NonCartesianMRI,
    radial_trajectory,
    spiral_trajectory,
)
from diffinv.operators.mri.nufft import make_backend
from diffinv.operators.testing import check_adjoint

ADJOINT_TOL = 1e-6  # = tests/conftest.py ADJOINT_TOL (operators/testing.py, check_adjoint)
H, W, C = 16, 12, 3
BACKENDS = ["dft", "finufft", "torchkbnufft"]


def _backend(name):
    if name != "dft":
        pytest.importorskip(name)
    return name


def _traj(k=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(k, 2, dtype=torch.float64, generator=g) * 2 - 1) * math.pi


def _maps(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(C, H, W, dtype=torch.complex128, generator=g)


TRAJS = {
    "random": lambda: _traj(),
    "radial": lambda: radial_trajectory(9, 16),
    "spiral": lambda: spiral_trajectory(4, 40, 3.0),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("traj", list(TRAJS))
def test_adjoint(backend, traj):
    op = NonCartesianMRI(_maps(), TRAJS[traj](), backend=_backend(backend))
    assert check_adjoint(op, (2, 1, H, W), torch.complex128) < ADJOINT_TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_adjoint_single_coil_complex64(backend):
    op = NonCartesianMRI(None, _traj(), shape=(H, W), backend=_backend(backend))
    assert check_adjoint(op, (1, 1, H, W), torch.complex128) < ADJOINT_TOL
    x = torch.randn(1, 1, H, W, dtype=torch.complex64)
    assert op(x).dtype == torch.complex64 and op(x).shape == (1, 1, 300)


def test_dft_reference_is_the_defining_sum():
    om = _traj(7)
    x = torch.randn(H, W, dtype=torch.complex128)
    n0 = torch.arange(H) - H // 2
    n1 = torch.arange(W) - W // 2
    ph = om[:, 0, None, None] * n0[None, :, None] + om[:, 1, None, None] * n1[None, None, :]
    ref = (x[None] * torch.exp(-1j * ph)).sum((-2, -1)) / math.sqrt(H * W)
    torch.testing.assert_close(make_backend("dft", om, (H, W)).forward(x), ref)


@pytest.mark.parametrize("backend, tol", [("finufft", 1e-9), ("torchkbnufft", 5e-3)])
def test_backend_accuracy_against_exact_dft(backend, tol):
    _backend(backend)
    om = _traj()
    x = torch.randn(2, C, H, W, dtype=torch.complex128)
    ref = make_backend("dft", om, (H, W))
    fast = make_backend(backend, om, (H, W))
    y = fast.forward(x)
    yr = ref.forward(x)
    assert float((y - yr).norm() / yr.norm()) < tol
    xa, xr = fast.adjoint(yr), ref.adjoint(yr)
    assert float((xa - xr).norm() / xr.norm()) < tol


def test_grid_trajectory_reproduces_cartesian_operator():
    k0 = torch.arange(H) - H // 2
    k1 = torch.arange(W) - W // 2
    kk = torch.stack(torch.meshgrid(k0, k1, indexing="ij"), -1).reshape(-1, 2).double()
    om = 2 * math.pi * kk / torch.tensor([H, W], dtype=torch.float64)
    x = torch.randn(2, 1, H, W, dtype=torch.complex128)
    nc = NonCartesianMRI(_maps(), om, backend="dft")(x).reshape(2, C, H, W)
    torch.testing.assert_close(nc, MultiCoilMRI(_maps())(x))


@pytest.mark.parametrize("backend, tol", [("dft", 1e-12), ("finufft", 1e-9),
                                          ("torchkbnufft", 1e-2)])
def test_toeplitz_normal_matches_exact(backend, tol):
    op = NonCartesianMRI(_maps(), radial_trajectory(11, 16), backend=_backend(backend))
    exact = NonCartesianMRI(_maps(), radial_trajectory(11, 16), backend="dft", toeplitz=False)
    x = torch.randn(2, 1, H, W, dtype=torch.complex128)
    ref = exact.normal(x)
    assert float((op.normal(x) - ref).norm() / ref.norm()) < tol


@pytest.mark.parametrize("backend", ["dft", "finufft"])
def test_autograd_gradient_is_adjoint(backend):
    op = NonCartesianMRI(_maps(), _traj(), backend=_backend(backend))
    x = torch.randn(1, 1, H, W, dtype=torch.complex128, requires_grad=True)
    y = torch.randn(1, C, 300, dtype=torch.complex128)
    loss = 0.5 * (op(x) - y).abs().pow(2).sum()
    (grad,) = torch.autograd.grad(loss, x)
    ref = op.adjoint(op(x.detach()) - y)
    torch.testing.assert_close(grad, ref)
    # double backward through the finufft autograd function (used by some samplers)
    if backend == "finufft":
        xs = torch.randn(1, 1, 5, 4, dtype=torch.complex128, requires_grad=True)
        small = NonCartesianMRI(None, _traj(20), shape=(5, 4), backend="finufft")
        assert torch.autograd.gradcheck(lambda z: torch.view_as_real(small(z)), (xs,))


def _sigpy_accurate_nufft(monkeypatch):
    """Make sigpy's Sense use a NUFFT accurate to ~1e-7 instead of its ~1e-2 default."""
    import functools

    import sigpy.linop

    accurate = functools.partial(sigpy.linop.NUFFT, oversamp=2.0, width=12)
    monkeypatch.setattr(sigpy.linop, "NUFFT", accurate)  # looked up by sigpy.mri.linop.Sense


@pytest.mark.parametrize("backend", ["dft", "finufft"])
def test_agrees_with_sigpy_sense(backend, monkeypatch):
    sp = pytest.importorskip("sigpy.mri.linop")
    _sigpy_accurate_nufft(monkeypatch)
    om = radial_trajectory(10, 16)
    coord = om.numpy() * np.array([H, W]) / (2 * np.pi)  # sigpy: k-space samples
    maps = _maps()
    x = torch.randn(1, 1, H, W, dtype=torch.complex128)
    ref_op = sp.Sense(maps.numpy(), coord=coord)
    ours = NonCartesianMRI(maps, om, backend=_backend(backend))
    ref = ref_op * x[0, 0].numpy()
    got = ours(x)[0].numpy()
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5
    y = torch.randn(1, C, om.shape[0], dtype=torch.complex128)
    ref_adj = ref_op.H * y[0].numpy()
    got_adj = ours.adjoint(y)[0, 0].numpy()
    assert np.linalg.norm(got_adj - ref_adj) / np.linalg.norm(ref_adj) < 1e-5


def test_sigpy_default_sense_is_only_approximate():
    """Documents why the test above raises sigpy's NUFFT accuracy: its default is ~1e-2."""
    sp = pytest.importorskip("sigpy.mri.linop")
    om = radial_trajectory(10, 16)
    coord = om.numpy() * np.array([H, W]) / (2 * np.pi)
    x = torch.randn(1, 1, H, W, dtype=torch.complex128)
    ref = sp.Sense(_maps().numpy(), coord=coord) * x[0, 0].numpy()
    got = NonCartesianMRI(_maps(), om, backend="dft")(x)[0].numpy()
    assert 1e-5 < np.linalg.norm(got - ref) / np.linalg.norm(ref) < 5e-2


def test_density_compensation_matches_radial_ramp_and_helps_gridding():
    from diffinv.datasets.mri_phantoms import mri_phantom

    n = 32
    x = mri_phantom((n, n), dtype=torch.complex128)
    om = radial_trajectory(60, 2 * n, golden_angle=False)
    op = NonCartesianMRI(None, om, shape=(n, n), backend=_backend("finufft"))
    w = op.density_compensation(20)
    assert w.shape == (om.shape[0],) and bool((w > 0).all())
    # uniform radial: the analytic density compensation is the ramp |k| (Jacobian)
    r = om.norm(dim=1)
    band = (r > 0.3 * math.pi) & (r < 0.9 * math.pi)
    ratio = w[band] / r[band]
    assert float(ratio.std() / ratio.mean()) < 0.1

    def fit_err(img):
        s = (img.conj() * x).sum().real / (img.abs() ** 2).sum()
        return float((s * img - x).norm() / x.norm())

    y = op(x)
    err_dcf = fit_err(op.adjoint(y * w))
    err_ramp = fit_err(op.adjoint(y * r.clamp(min=math.pi / n)))
    err_plain = fit_err(op.adjoint(y))
    assert err_dcf < 0.5 * err_plain
    assert err_dcf < 1.2 * err_ramp


def test_bad_trajectory():
    with pytest.raises(ValueError, match="trajectory"):
        NonCartesianMRI(_maps(), torch.full((5, 2), 4.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="trajectory"):
        NonCartesianMRI(_maps(), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="shape"):
        NonCartesianMRI(None, _traj())
    with pytest.raises(ValueError, match="backend"):
        NonCartesianMRI(_maps(), _traj(), backend="nope")


def test_to_rebuilds_backend_and_odd_sizes():
    om = _traj(50)
    maps = torch.randn(2, 7, 5, dtype=torch.complex128)
    op = NonCartesianMRI(maps, om, backend="dft").to("cpu")
    assert op.backend.omega.device.type == "cpu"
    assert check_adjoint(op, (1, 1, 7, 5), torch.complex128) < ADJOINT_TOL
    x = torch.randn(1, 1, 7, 5, dtype=torch.complex128)
    torch.testing.assert_close(op.normal(x), op.adjoint(op(x)))
