"""Classical phase-retrieval baselines recover known objects from noiseless data."""

from __future__ import annotations

import pytest
import torch

from diffinv.operators.phase_retrieval import (
    CodedDiffraction,
    FarFieldPtychography,
    FourierPhaseRetrieval,
    disk_probe,
    epie,
    error_reduction,
    hio,
    nrmse,
    psnr,
    raar,
    raster_positions,
    wirtinger_flow,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def simple_image(n: int = 16) -> torch.Tensor:
    """A real, non-negative 16x16 test object: two overlapping blocks plus texture."""
    x = torch.zeros(1, 1, n, n, dtype=torch.float64)
    x[..., 2:10, 3:13] = 1.0
    x[..., 8:14, 6:9] = 0.5
    return x + 0.3 * torch.rand(1, 1, n, n, dtype=torch.float64, generator=_gen())


def test_hio_recovers_real_nonnegative_image_up_to_ambiguities():
    x = simple_image()
    op = FourierPhaseRetrieval(16)  # 2x oversampled, support = the 16x16 window
    y = op(x).expand(4, -1, -1, -1)  # four random starts
    res = hio(op, y, 600, beta=0.9, generator=_gen(1))
    res = error_reduction(op, y, 50, x0=res.z)
    best = int(torch.argmin(res.final_error))
    x_hat = res.x[best:best + 1]
    assert x_hat.shape == x.shape and not x_hat.is_complex()
    assert float(res.final_error[best]) < 1e-3
    assert float(nrmse(x_hat, x)) < 0.01
    assert float(psnr(x_hat, x)) > 40.0
    # a random image with the same support and energy scores far worse
    other = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=_gen(9))
    assert float(nrmse(other * x.norm() / other.norm(), x)) > 0.2


def test_error_reduction_error_never_increases():
    x = simple_image()
    op = FourierPhaseRetrieval(16)
    res = error_reduction(op, op(x).expand(2, -1, -1, -1), 100, generator=_gen(2))
    e = res.errors
    assert e.shape == (100, 2)
    assert bool((e[1:] <= e[:-1] * (1 + 1e-10)).all())  # Fienup 1982, sec. IV


def test_raar_douglas_rachford_limit_recovers_image():
    x = simple_image()
    op = FourierPhaseRetrieval(16)
    y = op(x).expand(4, -1, -1, -1)
    res = raar(op, y, 600, beta=1.0, generator=_gen(1))
    best = int(torch.argmin(res.final_error))
    assert float(nrmse(res.x[best:best + 1], x)) < 0.02


def test_projection_algorithms_reject_bad_input():
    op = FourierPhaseRetrieval(8)
    with pytest.raises(ValueError, match="y:"):
        hio(op, torch.zeros(1, 1, 8, 8), 10)
    with pytest.raises(ValueError, match="beta"):
        hio(op, torch.zeros(1, 1, 16, 16), 10, beta=1.5)
    with pytest.raises(ValueError, match="n_iter"):
        raar(op, torch.zeros(1, 1, 16, 16), 0)
    with pytest.raises(ValueError, match="op"):
        hio(CodedDiffraction(8, 2), torch.zeros(1, 2, 8, 8), 10)


def test_wirtinger_flow_recovers_complex_object_from_cdp():
    x = torch.randn(2, 1, 16, 16, dtype=torch.complex128, generator=_gen(3))
    op = CodedDiffraction(16, 6, seed=3, mask_type="octanary")
    res = wirtinger_flow(op, op(x), 400, generator=_gen(0))
    err = nrmse(res.x, x, translation=False, twin=False)
    assert float(err.max()) < 1e-3
    # without removing the global phase the same estimate is far off
    assert float(nrmse(res.x, x, translation=False, twin=False, global_phase=False).min()) > 0.1


def test_wirtinger_flow_real_object():
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=_gen(4))
    op = CodedDiffraction(12, 3, seed=1)
    res = wirtinger_flow(op, op(x), 300, real=True, generator=_gen(0))
    assert not res.x.is_complex()
    assert float(nrmse(res.x, x, translation=False, twin=False)) < 1e-4


def test_epie_recovers_object_with_known_probe():
    g = _gen(5)
    probe = disk_probe(8, 3.0, defocus=1.0)
    op = FarFieldPtychography(probe, raster_positions(20, 8, 3), 20, detector_size=12)
    amp = 0.5 + 0.5 * torch.rand(1, 1, 20, 20, dtype=torch.float64, generator=g)
    obj = torch.polar(amp, torch.rand(1, 1, 20, 20, dtype=torch.float64, generator=g))
    res = epie(op, op(obj), 60, generator=_gen(0))
    lit = (op.coverage() > 1e-3 * op.coverage().max()).to(torch.float64)
    err = nrmse(res.x * lit, obj * lit, translation=False, twin=False)
    assert float(err) < 0.02
    assert float(res.errors[-1]) < 0.1 * float(res.errors[0])


def test_wirtinger_flow_normalisation_constants():
    from diffinv.operators.phase_retrieval.wirtinger_flow import gram_scale

    like = torch.zeros(1, dtype=torch.float64)
    # the padded orthonormal DFT is an isometry: tr(B^H B) / n = 1 (probe estimate is exact)
    assert abs(gram_scale(FourierPhaseRetrieval(8), like) - 1.0) < 1e-12
    # L unit-modulus masks: B^H B = L I
    assert abs(gram_scale(CodedDiffraction(8, 5, seed=0), like) - 5.0) < 1e-12
