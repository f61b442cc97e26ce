"""Cartesian multi-coil MRI operator: adjoints, conventions, sigpy agreement, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffinv.operators import RealToComplex
from diffinv.operators.mri import (
    MultiCoilMRI,
    birdcage_maps,
    cartesian_mask,
    fft2c,
    ifft2c,
    poisson_disc_mask,
)
from diffinv.operators.testing import check_adjoint, check_gradient

ADJOINT_TOL = 1e-6  # = tests/conftest.py ADJOINT_TOL (operators/testing.py, check_adjoint)
H, W, C = 24, 20, 4


def _maps(dtype=torch.complex128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(C, H, W, dtype=dtype, generator=g)


MASKS = {
    "full": lambda: None,
    "random": lambda: cartesian_mask((H, W), 4, 0.1, "random", seed=1),
    "equispaced": lambda: cartesian_mask((H, W), 4, 0.1, "equispaced", seed=1),
    "poisson": lambda: poisson_disc_mask((H, W), 3, calib=(6, 6), seed=1),
    "line (W,)": lambda: cartesian_mask((H, W), 4, 0.1, "random", seed=2)[0],
}


@pytest.mark.parametrize("kind", list(MASKS))
@pytest.mark.parametrize("single_coil", [False, True])
def test_adjoint_every_mask(kind, single_coil):
    mask = MASKS[kind]()
    op = MultiCoilMRI(None if single_coil else _maps(), mask, shape=(H, W))
    assert check_adjoint(op, (2, 1, H, W), torch.complex128) < ADJOINT_TOL


def test_fft2c_matches_explicit_centred_dft():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, dtype=torch.complex128, generator=g)
    n0 = torch.arange(5) - 5 // 2
    n1 = torch.arange(6) - 6 // 2
    e0 = torch.exp(-2j * torch.pi * torch.outer(n0, n0).double() / 5)
    e1 = torch.exp(-2j * torch.pi * torch.outer(n1, n1).double() / 6)
    ref = e0 @ x @ e1.T / np.sqrt(30)
    torch.testing.assert_close(fft2c(x), ref)
    torch.testing.assert_close(ifft2c(fft2c(x)), x)
    assert float(fft2c(x).norm()) == pytest.approx(float(x.norm()), rel=1e-12)  # orthonormal


def test_output_shape_zeros_and_dtype():
    mask = cartesian_mask((H, W), 4, 0.1, seed=0)
    op = MultiCoilMRI(_maps(torch.complex64), mask)
    x = torch.randn(3, 1, H, W, dtype=torch.complex64)
    y = op(x)
    assert y.shape == (3, C, H, W) and y.dtype == torch.complex64
    assert bool((y[:, :, ~mask] == 0).all())
    assert bool((y[:, :, mask] != 0).all())
    # complex128 input keeps its precision; maps are cast
    assert op(x.to(torch.complex128)).dtype == torch.complex128


def test_single_coil_is_masked_fft():
    mask = cartesian_mask((H, W), 4, 0.1, seed=0)
    op = MultiCoilMRI(mask=mask)
    x = torch.randn(2, 1, H, W, dtype=torch.complex128)
    torch.testing.assert_close(op(x), fft2c(x) * mask)
    assert op.out_shape == (1, H, W)


def test_normal_equals_adjoint_forward():
    op = MultiCoilMRI(_maps(), cartesian_mask((H, W), 4, 0.1, seed=0))
    x = torch.randn(2, 1, H, W, dtype=torch.complex128)
    torch.testing.assert_close(op.normal(x), op.adjoint(op(x)))


def test_full_sampling_with_normalised_maps_is_isometry():
    maps = birdcage_maps((H, W), C, dtype=torch.complex128)
    op = MultiCoilMRI(maps)
    x = torch.randn(1, 1, H, W, dtype=torch.complex128)
    torch.testing.assert_close(op.normal(x), x)


def test_agrees_with_sigpy_sense():
    sp_linop = pytest.importorskip("sigpy.mri.linop")
    maps = _maps()
    mask = cartesian_mask((H, W), 4, 0.1, seed=3)
    x = torch.randn(1, 1, H, W, dtype=torch.complex128)
    ref_op = sp_linop.Sense(maps.numpy(), weights=mask.numpy().astype(np.float64))
    ref = ref_op * x[0, 0].numpy()
    ours = MultiCoilMRI(maps, mask)(x)[0].numpy()
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 1e-5
    y = torch.randn(1, C, H, W, dtype=torch.complex128) * mask
    ref_adj = ref_op.H * y[0].numpy()
    ours_adj = MultiCoilMRI(maps, mask).adjoint(y)[0, 0].numpy()
    assert np.linalg.norm(ours_adj - ref_adj) / np.linalg.norm(ref_adj) < 1e-5


def test_real_prior_adapter_and_gradient():
    op = MultiCoilMRI(_maps(), cartesian_mask((H, W), 4, 0.1, seed=0)) @ RealToComplex()
    assert check_adjoint(op, (1, 2, H, W), torch.float64) < ADJOINT_TOL
    assert check_gradient(MultiCoilMRI(_maps()[:, :6, :5], None), (1, 1, 6, 5), torch.complex128)


def test_device_follows_input_and_to():
    op = MultiCoilMRI(_maps(), cartesian_mask((H, W), 4, 0.1, seed=0)).to("cpu")
    assert op.mask.device.type == "cpu" and op.coil_maps.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(coil_maps=torch.zeros(2, 3, 4, 5, dtype=torch.complex64)), "coil_maps"),
        (dict(coil_maps=torch.full((2, 4, 4), float("nan"), dtype=torch.complex64)), "coil_maps"),
        (dict(coil_maps=torch.ones(2, 4, 4), mask=torch.ones(5, 4, dtype=torch.bool)), "mask"),
        (dict(mask=torch.full((4, 4), 0.5)), "mask"),
        (dict(), "shape"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiCoilMRI(**kwargs)


def test_bad_image_shape_and_no_inplace():
    op = MultiCoilMRI(_maps())
    with pytest.raises(ValueError, match="x"):
        op(torch.zeros(1, 2, H, W, dtype=torch.complex128))
    with pytest.raises(ValueError, match="y"):
        op.adjoint(torch.zeros(1, C + 1, H, W, dtype=torch.complex128))
    x = torch.randn(1, 1, H, W, dtype=torch.complex128)
    x0 = x.clone()
    op.normal(x)
    assert torch.equal(x, x0)


@pytest.mark.parametrize("shape", [(15, 10), (12, 9), (16, 16)])
def test_odd_and_even_sizes_match_explicit_fft2c(shape):
    g = torch.Generator().manual_seed(4)
    maps = torch.randn(3, *shape, dtype=torch.complex128, generator=g)
    mask = torch.rand(shape, generator=g) < 0.5
    op = MultiCoilMRI(maps, mask)
    x = torch.randn(2, 1, *shape, dtype=torch.complex128, generator=g)
    torch.testing.assert_close(op(x), fft2c(x * maps) * mask)
    y = torch.randn(2, 3, *shape, dtype=torch.complex128, generator=g)
    ref = (maps.conj() * ifft2c(y * mask)).sum(1, keepdim=True)
    torch.testing.assert_close(op.adjoint(y), ref)
    assert check_adjoint(op, (1, 1, *shape), torch.complex128) < ADJOINT_TOL


def test_batch_chunks_give_the_unchunked_results():
    maps = birdcage_maps((16, 12), 3)
    whole = MultiCoilMRI(maps, cartesian_mask((16, 12), 2, 0.2, seed=0))
    chunked = MultiCoilMRI(maps, cartesian_mask((16, 12), 2, 0.2, seed=0))
    chunked.cpu_chunk_bytes = 1  # one image per chunk
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 1, 16, 12, dtype=torch.complex64, generator=g)
    y = torch.randn(5, 3, 16, 12, dtype=torch.complex64, generator=g)
    torch.testing.assert_close(chunked(x), whole(x))
    torch.testing.assert_close(chunked.adjoint(y), whole.adjoint(y))
    torch.testing.assert_close(chunked.normal(x), whole.normal(x))
    xr = x.clone().requires_grad_(True)
    chunked(xr).abs().square().sum().backward()
    torch.testing.assert_close(xr.grad, 2 * whole.normal(x))
