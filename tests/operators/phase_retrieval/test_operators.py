"""Phase-retrieval operators: numpy FFT references, adjoints, gradients, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffinv.operators import InverseProblem
from diffinv.operators.phase_retrieval import (
    CodedDiffraction,
    FarFieldPtychography,
    FourierPhaseRetrieval,
    PhotonNoise,
    disk_probe,
    raster_positions,
)
from diffinv.operators.testing import check_adjoint, check_gradient

ADJOINT_TOL = 1e-6


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def np_centred_fft(z: np.ndarray) -> np.ndarray:
    """Independent reference: numpy's centred orthonormal 2-D DFT."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(z, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


# -- Fourier ---------------------------------------------------------------------------------
@pytest.mark.parametrize("complex_obj", [False, True])
def test_fourier_matches_numpy(complex_obj):
    g = _gen()
    n = 10
    x = torch.randn(2, 1, n, n, dtype=torch.float64, generator=g)
    if complex_obj:
        x = torch.complex(x, torch.randn(2, 1, n, n, dtype=torch.float64, generator=g))
    op = FourierPhaseRetrieval(n)  # 2x: 5 zeros each side, M = 20
    y = op(x)
    assert y.shape == (2, 1, 20, 20) and not y.is_complex()
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (5, 5), (5, 5)))
    ref = np.abs(np_centred_fft(xp)) ** 2
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
    amp = FourierPhaseRetrieval(n, measure="amplitude")(x)
    np.testing.assert_allclose(amp.numpy(), np.sqrt(ref), rtol=1e-10, atol=1e-12)
    # Parseval: the padded orthonormal DFT is an isometry
    np.testing.assert_allclose(y.sum((1, 2, 3)).numpy(), (x.abs() ** 2).sum((1, 2, 3)).numpy())


def test_fourier_padding_conventions():
    op = FourierPhaseRetrieval(16)
    assert op.padded_size == (32, 32) and op.linear.pad_h == (8, 8)
    odd = FourierPhaseRetrieval((7, 9), oversampling=2.0)
    assert odd.padded_size == (14, 18) and odd.linear.pad_h == (3, 4)
    # DPS/DAPS code: int(oversample / 8 * H) zeros per side -> 1.5x for oversample=2
    dps = FourierPhaseRetrieval.dps_convention(64, oversample=2.0, measure="amplitude")
    assert dps.padded_size == (96, 96) and dps.linear.pad_h == (16, 16)
    assert dps.oversampling == 1.5 and dps.measure == "amplitude"
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64, generator=_gen())
    ref = np.abs(np_centred_fft(np.pad(x.numpy(), ((0, 0), (0, 0), (16, 16), (16, 16)))))
    np.testing.assert_allclose(dps(x).numpy(), ref, rtol=1e-10, atol=1e-12)
    # the support mask marks exactly the padded window
    s = op.support()
    assert s.sum() == 256 and bool(s[8:24, 8:24].all())


def test_fourier_channels_and_shapes():
    op = FourierPhaseRetrieval(8, channels=3)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=_gen())
    y = op(x)
    assert y.shape == (2, 3, 16, 16) and op.out_shape == (3, 16, 16)
    single = FourierPhaseRetrieval(8)
    torch.testing.assert_close(y[:, 1:2], single(x[:, 1:2]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_fourier_adjoint(dtype):
    op = FourierPhaseRetrieval((6, 9), oversampling=1.7, channels=2)
    assert check_adjoint(op.linear, (3, 2, 6, 9), dtype) < ADJOINT_TOL
    dps = FourierPhaseRetrieval.dps_convention(8)
    assert check_adjoint(dps.linear, (2, 1, 8, 8), dtype) < ADJOINT_TOL


def test_fourier_translation_and_twin_invariance():
    """The trivial ambiguities really leave the data unchanged (on the padded grid)."""
    op = FourierPhaseRetrieval(8)
    x = torch.zeros(1, 1, 8, 8, dtype=torch.complex128)
    x[..., 1:6, 2:7] = torch.randn(1, 1, 5, 5, dtype=torch.complex128, generator=_gen())
    y = op(x)
    torch.testing.assert_close(op(torch.roll(x, (1, 1), (-2, -1))), y)
    torch.testing.assert_close(op(x * np.exp(0.3j)), y)
    twin = torch.flip(x, (-2, -1)).conj()
    torch.testing.assert_close(op(twin), y)


def test_fourier_gradient():
    op = FourierPhaseRetrieval(5)
    assert check_gradient(op, (2, 1, 5, 5), torch.float64)
    assert check_gradient(op, (1, 1, 5, 5), torch.complex128)
    amp = FourierPhaseRetrieval(5, measure="amplitude")
    assert check_gradient(amp, (1, 1, 5, 5), torch.float64)


# -- coded diffraction -------------------------------------------------------------------------
@pytest.mark.parametrize("mask_type", ["phase", "octanary"])
def test_cdp_matches_numpy(mask_type):
    n, L = 9, 3
    op = CodedDiffraction(n, L, seed=5, mask_type=mask_type)
    x = torch.randn(2, 1, n, n, dtype=torch.complex128, generator=_gen())
    y = op(x)
    assert y.shape == (2, L, n, n)
    d = op.masks.numpy()
    ref = np.abs(np_centred_fft(d[None] * x.numpy())) ** 2  # (2, L, n, n)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
    if mask_type == "phase":
        np.testing.assert_allclose(np.abs(d), 1.0)
    else:
        assert set(np.round(np.abs(d) ** 2, 6).ravel()) <= {0.5, 3.0}


def test_cdp_masks_reproducible_and_padded():
    a = CodedDiffraction(8, 4, seed=1).masks
    b = CodedDiffraction(8, 4, seed=1).masks
    c = CodedDiffraction(8, 4, seed=2).masks
    assert torch.equal(a, b) and not torch.equal(a, c)
    op = CodedDiffraction(8, 2, seed=1, oversampling=2.0)
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=_gen())
    y = op(x)
    assert y.shape == (1, 2, 16, 16)
    xp = np.pad(op.masks.numpy()[None] * x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)))
    np.testing.assert_allclose(y.numpy(), np.abs(np_centred_fft(xp)) ** 2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_cdp_adjoint_and_normal(dtype):
    op = CodedDiffraction((7, 8), 3, seed=0, mask_type="octanary", oversampling=1.5)
    assert check_adjoint(op.linear, (2, 1, 7, 8), dtype) < ADJOINT_TOL
    x = torch.randn(2, 1, 7, 8, dtype=torch.complex128, generator=_gen())
    torch.testing.assert_close(op.linear.normal(x), op.linear.adjoint(op.linear.forward(x)))


def test_cdp_gradient():
    op = CodedDiffraction(5, 2, seed=0)
    assert check_gradient(op, (2, 1, 5, 5), torch.float64)
    assert check_gradient(op, (1, 1, 5, 5), torch.complex128)


# -- ptychography ------------------------------------------------------------------------------
def _ptycho(detector=None):
    probe = disk_probe(6, 2.5, defocus=1.0)
    pos = raster_positions((12, 14), 6, 3)
    return FarFieldPtychography(probe, pos, (12, 14), detector_size=detector)


def test_raster_positions_cover_object():
    pos = raster_positions((12, 14), 6, 3)
    assert pos[:, 0].max() == 6 and pos[:, 1].max() == 8 and pos.min() == 0
    assert len(pos) == 3 * 4


@pytest.mark.parametrize("detector", [None, 9])
def test_ptychography_matches_numpy(detector):
    op = _ptycho(detector)
    x = torch.randn(2, 1, 12, 14, dtype=torch.complex128, generator=_gen())
    y = op(x)
    m = detector or 6
    assert y.shape == (2, len(op.positions), m, m)
    p = op.probe.numpy()
    before = (m - 6) // 2
    for k, (r, c) in enumerate(op.positions.tolist()):
        exit_wave = p * x.numpy()[:, 0, r:r + 6, c:c + 6]
        padded = np.pad(exit_wave, ((0, 0), (before, m - 6 - before), (before, m - 6 - before)))
        np.testing.assert_allclose(y[:, k].numpy(), np.abs(np_centred_fft(padded)) ** 2,
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_ptychography_adjoint(dtype):
    assert check_adjoint(_ptycho().linear, (2, 1, 12, 14), dtype) < ADJOINT_TOL
    assert check_adjoint(_ptycho(9).linear, (1, 1, 12, 14), dtype) < ADJOINT_TOL


def test_ptychography_gradient_and_coverage():
    probe = disk_probe(4, 1.5)
    op = FarFieldPtychography(probe, raster_positions(6, 4, 2), 6)
    assert check_gradient(op, (1, 1, 6, 6), torch.complex128)
    cov = op.coverage()
    # coverage equals B^H B applied to ones (exit waves of a unit object, back-projected)
    ones = torch.ones(1, 1, 6, 6, dtype=torch.complex128)
    torch.testing.assert_close(op.linear.normal(ones)[0, 0].real, cov)


# -- validation and problems -------------------------------------------------------------------
def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="oversampling"):
        FourierPhaseRetrieval(8, oversampling=0.5)
    with pytest.raises(ValueError, match="measure"):
        FourierPhaseRetrieval(8, measure="phase")
    with pytest.raises(ValueError, match="x:"):
        FourierPhaseRetrieval(8)(torch.zeros(1, 1, 7, 8))
    with pytest.raises(ValueError, match="n_masks"):
        CodedDiffraction(8, 0)
    with pytest.raises(ValueError, match="mask_type"):
        CodedDiffraction(8, 2, mask_type="binary")
    with pytest.raises(ValueError, match="positions"):
        FarFieldPtychography(disk_probe(4, 1.5), torch.tensor([[0, 3]]), 6)
    with pytest.raises(ValueError, match="positions"):
        FarFieldPtychography(disk_probe(4, 1.5), torch.tensor([[0.5, 1.0]]), 6)
    with pytest.raises(ValueError, match="probe"):
        FarFieldPtychography(torch.ones(4), torch.tensor([[0, 0]]), 6)


def test_inverse_problem_and_no_input_mutation():
    op = CodedDiffraction(6, 2, seed=0)
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64, generator=_gen())
    x_copy = x.clone()
    noise = PhotonNoise(flux=1e3)
    y = noise.sample(op(x), generator=_gen(1))
    problem = InverseProblem(op, noise, y[0])  # batch dim added from out_shape
    assert problem.y.shape == (1, 2, 6, 6)
    ll, grad = problem.grad_log_likelihood(x)
    assert grad.shape == x.shape and torch.isfinite(ll).all()
    assert torch.equal(x, x_copy)


def test_float32_precision_is_kept_and_to_device_roundtrip():
    ops = [
        FourierPhaseRetrieval(8),
        CodedDiffraction(8, 2, seed=0),
        FarFieldPtychography(disk_probe(4, 1.5), raster_positions(8, 4, 2), 8),
    ]
    x = torch.rand(2, 1, 8, 8, generator=_gen())
    for op in ops:
        op.to("cpu")
        y = op(x)
        assert y.dtype == torch.float32
        assert op.linear.forward(x).dtype == torch.complex64
        ref = op(x.double())
        torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-5)
