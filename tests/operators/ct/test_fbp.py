"""Filtered back-projection: accuracy on Shepp-Logan (parallel and fan beam), filters, real data.

Stated accuracy (noise-free data, Shepp-Logan 128 x 128 in 1/mm, PSNR with the phantom's
maximum as peak): parallel beam with 180 views over [0, pi) and the ramp filter reaches
30.7 dB (asserted > 30 dB); fan beam (flat or curved) with 360 views over [0, 2 pi) > 30 dB.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffinv.datasets.ct_phantoms import shepp_logan
from diffinv.operators.ct import FILTERS, FanBeamRadon, ParallelBeamRadon
from diffinv.operators.ct.fbp import angular_weights, filter_sinogram, ramp_filter_response


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.max() ** 2 / ((x - ref) ** 2).mean()))


@pytest.fixture(scope="module")
def phantom():
    return shepp_logan(128)


@pytest.fixture(scope="module")
def parallel_data(phantom):
    op = ParallelBeamRadon(128, 180)
    return op, op(phantom)


@pytest.mark.parametrize(
    "filter, min_psnr", [("ramp", 30.0), ("shepp-logan", 29.0), ("cosine", 26.5), ("hann", 25.0)]
)
def test_parallel_fbp_psnr(phantom, parallel_data, filter, min_psnr):
    op, y = parallel_data
    rec = op.fbp(y, filter=filter)
    assert rec.shape == (1, 1, 128, 128) and rec.dtype == y.dtype
    assert psnr(rec, phantom) > min_psnr
    # units: the reconstruction is attenuation in 1/mm (mean preserved within 0.5%)
    assert float(rec.mean() / phantom.mean()) == pytest.approx(1.0, abs=0.005)


def test_fewer_views_give_a_worse_fbp(phantom, parallel_data):
    op, y = parallel_data
    sparse = ParallelBeamRadon(128, 30)
    assert psnr(sparse.fbp(sparse(phantom)), phantom) < psnr(op.fbp(y), phantom) - 5


def test_smoother_windows_reduce_noise(parallel_data):
    op, _ = parallel_data
    g = torch.Generator().manual_seed(0)
    noise = 0.05 * torch.randn(1, *op.out_shape, generator=g)
    stds = [float(op.fbp(noise, f).std()) for f in FILTERS]
    assert stds == sorted(stds, reverse=True)  # ramp > shepp-logan > cosine > hann


def test_pixel_size_scales_the_reconstruction(phantom):
    # the same object described with pixel 0.5 mm: attenuation doubles per mm ... and back
    op1 = ParallelBeamRadon(128, 90, detector_spacing=1.0, pixel_size=1.0)
    op2 = ParallelBeamRadon(128, 90, detector_spacing=0.5, pixel_size=0.5)
    y1 = op1(phantom)
    y2 = op2(2 * phantom)  # twice the attenuation over half the size: same line integrals
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(op2.fbp(y2), 2 * op1.fbp(y1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("curved", [False, True])
def test_fan_fbp_reconstructs(phantom, curved):
    op = FanBeamRadon(
        128,
        360,
        source_origin=250.0,
        origin_detector=150.0,
        n_detectors=260,
        detector_spacing=1.2,
        curved=curved,
    )
    rec = op.fbp(op(phantom))
    assert psnr(rec, phantom) > 30.0
    assert float(rec.mean() / phantom.mean()) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("extra_deg", [2.0, 60.0])
def test_fan_fbp_short_scan_parker(phantom, extra_deg):
    """A short scan of 180 deg + fan (+ margin) with Parker weights matches the full rotation."""
    kw = dict(source_origin=250.0, origin_detector=150.0, n_detectors=260, detector_spacing=1.2)
    full = FanBeamRadon(128, 360, **kw)
    fan_deg = 2 * math.degrees(math.atan(129 * 1.2 / 1.6 / 250.0))
    arc = math.radians(180 + fan_deg + extra_deg)
    n = int(math.degrees(arc))
    op = FanBeamRadon(128, torch.arange(n, dtype=torch.float64) * arc / n + 0.3, **kw)
    rec = op.fbp(op(phantom))
    assert psnr(rec, phantom) > psnr(full.fbp(full(phantom)), phantom) - 1.0
    assert float(rec.mean() / phantom.mean()) == pytest.approx(1.0, abs=0.01)


def test_fan_fbp_limited_arc_warns_and_keeps_scale(phantom):
    kw = dict(source_origin=250.0, origin_detector=150.0, n_detectors=260, detector_spacing=1.2)
    op = FanBeamRadon(128, torch.arange(30, dtype=torch.float64) * math.radians(1.0), **kw)
    with pytest.warns(UserWarning, match="covers 30.0 deg.*not valid"):
        rec = op.fbp(op(phantom))
    # not a valid reconstruction, but no longer 1/12 of the scale: the mean level is kept
    assert float(rec.mean() / phantom.mean()) == pytest.approx(1.0, abs=0.15)


def test_ramp_response_is_the_bandlimited_ramp():
    resp, p = ramp_filter_response(64, 0.5)
    nu = torch.fft.fftfreq(p, dtype=torch.float64)  # cycles per cell
    ramp = nu.abs() / 0.5  # |omega| in cycles per length
    inner = nu.abs() > 0.05
    assert torch.allclose(resp[inner], ramp[inner], rtol=0.02)
    assert 0 < float(resp[0]) < float(ramp[1])  # small positive DC term (no DC bias)


def test_filter_sinogram_of_a_constant_integrates_to_zero_far_away():
    y = torch.zeros(1, 1, 1, 200, dtype=torch.float64)
    y[..., 80:120] = 1.0
    q = filter_sinogram(y, 1.0)
    assert abs(float(q.sum())) < 0.05 * float(q.abs().sum())


def test_angular_weights():
    a = torch.arange(180, dtype=torch.float64) * math.pi / 180
    w = angular_weights(a, math.pi)
    assert torch.allclose(w, torch.full_like(w, math.pi / 180))
    limited = torch.linspace(0, math.pi / 2, 46, dtype=torch.float64)
    w = angular_weights(limited, math.pi)
    assert float(w.sum()) == pytest.approx(math.pi / 2 + math.pi / 90, rel=1e-9)
    shuffled = a[torch.randperm(180)]
    assert torch.allclose(
        angular_weights(shuffled, math.pi), torch.full((180,), math.pi / 180, dtype=torch.float64)
    )


def test_real_tooth_scan_reconstructs(shared_data):
    """The APS tooth (TomoPy test data): FBP agrees with scikit-image's iradon."""
    from diffinv.datasets.data_exchange import estimate_rotation_center, read_data_exchange

    transform = pytest.importorskip("skimage.transform")
    path = shared_data("ct_tomopy_tooth") / "tooth.h5"
    sino, angles = read_data_exchange(path, rows=0, dtype=torch.float64)
    assert sino.shape == (1, 1, 181, 640)
    center = estimate_rotation_center(sino, angles)
    assert 290 < center < 300  # the axis is not in the middle of this detector
    # crop 560 columns around the axis and bin by 4 (140 cells of 4 detector pixels)
    c = round(center)
    crop = sino[..., c - 280 : c + 280]
    binned = crop.reshape(1, 1, 181, 140, 4).mean(-1)
    axis = (center - (c - 280) - 1.5) / 4
    op = ParallelBeamRadon(
        140, angles, n_detectors=140, detector_spacing=4.0, pixel_size=4.0, rotation_center=axis
    )
    rec = op.fbp(binned)[0, 0].numpy()
    # skimage convention: ours(t) = radon(image[::-1], -deg(t)); rotation axis at cell n // 2
    ref = transform.iradon(
        binned[0, 0].numpy().T / 4.0, -np.rad2deg(angles.numpy()), circle=True, filter_name="ramp"
    )[::-1]
    yy, xx = np.mgrid[:140, :140] - 69.5
    disk = np.hypot(xx, yy) < 66
    assert np.corrcoef(rec[disk], ref[disk])[0, 1] > 0.95
    tooth = ref > 0.5 * ref[disk].max()
    background = disk & (ref < 0.1 * ref[disk].max())
    assert tooth.sum() > 200 and background.sum() > 2000
    assert rec[tooth].mean() > 10 * abs(rec[background].mean())
    # the reconstruction explains the data
    resid = op(torch.from_numpy(rec.copy())[None, None]) - binned
    assert float(resid.norm() / binned.norm()) < 0.15


def test_parallel_fbp_agrees_with_the_pixel_driven_backprojection(phantom, parallel_data):
    # op.fbp back-projects with the operator's transpose; the pixel-driven reference
    # interpolates each filtered view at the pixel centres: the two agree to about 44 dB
    from diffinv.operators.ct.fbp import backproject_parallel

    op, y = parallel_data
    q = filter_sinogram(y, op.detector_spacing)
    w = angular_weights(op.angles, math.pi)
    ref = backproject_parallel(q, op.angles, w, 128, op.pixel_size, op.detector_spacing)
    assert psnr(op.fbp(y), ref) > 40.0
    assert psnr(op.fbp(y), phantom) >= psnr(ref, phantom) - 0.5


@pytest.mark.parametrize(
    "n, angles, kwargs",
    [
        (32, 30, {}),  # default detector: delta >= 1 (two-tap kernel)
        (32, 17, {"n_detectors": 80, "detector_spacing": 0.5}),  # delta < 1: general kernel
        (24, torch.tensor([0.0, 0.3, math.pi / 4, 1.9, 3.0]), {"rotation_center": 20.3}),
        (16, 8, {"pixel_size": 0.7, "detector_spacing": 1.3}),
    ],
)
def test_gather_backprojection_is_the_transpose(n, angles, kwargs):
    # The gather form used by FBP on the numba backend equals the ray-driven transpose.
    from diffinv.operators.ct import joseph_gather

    op = ParallelBeamRadon(n, angles, backend="numba", **kwargs)
    views = joseph_gather.view_parameters(op._params, op.n_angles, op.n_detectors)
    assert views is not None
    y = torch.randn(3, 1, op.n_angles, op.n_detectors, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    got = joseph_gather.backproject(y[:, 0].numpy(), views, n)  # a batch of 3
    torch.testing.assert_close(torch.from_numpy(got)[:, None], op.adjoint(y),
                               rtol=1e-10, atol=1e-10)
    one_by_one = joseph_gather.backproject(y[:, 0].numpy(), views, n, per_image=True)
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(one_by_one),
                               rtol=1e-12, atol=1e-12)


def test_fbp_is_the_same_on_both_backends(parallel_data):
    op, y = parallel_data
    numba_op = ParallelBeamRadon(128, 180, backend="numba")
    sparse_op = ParallelBeamRadon(128, 180, backend="sparse")
    torch.testing.assert_close(numba_op.fbp(y), sparse_op.fbp(y), rtol=1e-4, atol=1e-5)
