"""Parallel- and fan-beam projectors: exact adjoints, backends, units, gradients, validation."""

from __future__ import annotations

import math

import pytest
import torch

from diffinv.datasets.ct_phantoms import render_ellipses
from diffinv.operators.ct import FanBeamRadon, ParallelBeamRadon
from diffinv.operators.testing import check_adjoint, check_linearity
from tests.conftest import ADJOINT_TOL


def _parallel(n, angles, backend="auto", **kw):
    return ParallelBeamRadon(n, angles, backend=backend, **kw)


def _fan(n, angles, backend="auto", curved=False):
    return FanBeamRadon(
        n,
        angles,
        source_origin=2.0 * n,
        origin_detector=1.0 * n,
        n_detectors=2 * n,
        detector_spacing=1.3,
        pixel_size=1.0,
        curved=curved,
        backend=backend,
    )


@pytest.mark.parametrize("backend", ["numba", "sparse"])
@pytest.mark.parametrize(
    "n, angles",
    [
        (8, 5),
        (17, 12),
        (32, torch.tensor([0.0, 0.3, 1.2, 2.9])),  # sparse, uneven views
        (24, torch.linspace(0, math.pi / 3, 20)),  # limited angle
        (33, torch.arange(45) * (math.pi / 4) / 45 + math.pi / 8),  # steep diagonals
    ],
)
def test_parallel_adjoint(n, angles, backend):
    op = _parallel(n, angles, backend, n_detectors=n + 5, detector_spacing=0.9, pixel_size=1.1)
    assert check_adjoint(op, (3, 1, n, n), torch.float64) < ADJOINT_TOL


@pytest.mark.parametrize("backend", ["numba", "sparse"])
@pytest.mark.parametrize("curved", [False, True])
@pytest.mark.parametrize(
    "n, angles", [(8, 7), (20, 18), (31, torch.rand(9, dtype=torch.float64) * 6)]
)
def test_fan_adjoint(n, angles, curved, backend):
    op = _fan(n, angles, backend, curved)
    assert check_adjoint(op, (2, 1, n, n), torch.float64) < ADJOINT_TOL


def test_sparse_matrix_is_exact_transpose():
    op = _parallel(12, 7)
    A, At = op.matrices(dtype=torch.float64)
    assert torch.equal(A.to_dense().T, At.to_dense())
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    dense = op.to_matrix()
    assert torch.allclose(dense, A.to_dense(), atol=1e-13)
    assert torch.allclose(op(x).reshape(2, -1), x.reshape(2, -1) @ dense.T, atol=1e-12)


def test_torch_matrix_builder_matches_numba_builder():
    # the torch builder serves CUDA devices; the numba builder serves the CPU
    from diffinv.operators.ct.joseph_sparse import build_matrix

    for op in (_parallel(14, 9), _fan(15, 8, curved=True)):
        A, At = op.matrices(dtype=torch.float64)
        B, Bt = build_matrix(op._origin, op._direction, op.image_size, op.pixel_size, torch.float64)
        assert torch.allclose(A.to_dense(), B.to_dense(), atol=1e-13)
        assert torch.allclose(At.to_dense(), Bt.to_dense(), atol=1e-13)


@pytest.mark.parametrize("make", [lambda b: _parallel(20, 9, b), lambda b: _fan(20, 11, b, True)])
def test_backends_agree(make):
    x = torch.randn(3, 1, 20, 20, dtype=torch.float64)
    y = torch.randn(3, *make("numba").out_shape, dtype=torch.float64)
    a, b = make("numba"), make("sparse")
    assert torch.allclose(a(x), b(x), rtol=1e-12, atol=1e-12)
    assert torch.allclose(a.adjoint(y), b.adjoint(y), rtol=1e-12, atol=1e-12)


def test_batch_items_independent_and_dtype_preserved():
    op = _parallel(16, 10)
    x = torch.rand(4, 1, 16, 16)
    y = op(x)
    assert y.dtype == torch.float32 and y.shape == (4, 1, 10, op.n_detectors)
    for i in range(4):
        torch.testing.assert_close(y[i : i + 1], op(x[i : i + 1]), rtol=1e-5, atol=1e-6)
    assert op.adjoint(y).dtype == torch.float32
    assert check_linearity(op, (2, 1, 16, 16)) < 1e-12


def test_half_precision_inputs():
    op = _parallel(12, 5)
    x = torch.rand(2, 1, 12, 12)
    y = op(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), op(x), rtol=0.02, atol=0.05)


def test_inputs_not_modified():
    op = _fan(16, 8)
    x = torch.rand(2, 1, 16, 16)
    x0 = x.clone()
    y = op(x)
    y0 = y.clone()
    op.adjoint(y)
    op.fbp(y)
    assert torch.equal(x, x0) and torch.equal(y, y0)


def _disk(n, radius, value, pixel_size):
    # disk of physical radius `radius` centred at (0.1 r, -0.05 r) in a FOV of n * pixel_size
    half = n * pixel_size / 2
    params = torch.tensor(
        [[[0.1 * radius / half, -0.05 * radius / half, radius / half, radius / half, 0.0, value]]],
        dtype=torch.float64,
    )
    return render_ellipses(params, n, oversample=8)[:, None]


def _parallel_disk_error(n, pixel_size):
    # the same physical disk (radius 20, mu 0.03 per length unit) on an n x n grid
    radius, mu = 20.0, 0.03
    x = _disk(n, radius, mu, pixel_size)
    angles = torch.linspace(0, math.pi, 13, dtype=torch.float64)[:-1]
    op = ParallelBeamRadon(n, angles, n_detectors=90, detector_spacing=0.8, pixel_size=pixel_size)
    y = op(x)[0, 0]
    u = (torch.arange(90, dtype=torch.float64) - 44.5) * 0.8
    cx, cy = 0.1 * radius, -0.05 * radius
    shift = cx * torch.cos(angles)[:, None] + cy * torch.sin(angles)[:, None]
    chord = 2 * mu * torch.sqrt((radius**2 - (u[None] - shift) ** 2).clamp(min=0))
    return float((y - chord).norm() / chord.norm()), float(y.max()), 2 * mu * radius


def test_parallel_line_integrals_of_a_disk_match_chord_lengths():
    # analytic reference: the chord length 2 mu sqrt(R^2 - u^2) in physical units; the error
    # comes from pixelising the disk edge and shrinks as the pixels get finer
    err64, peak, exact = _parallel_disk_error(64, 1.0)
    err128, _, _ = _parallel_disk_error(128, 0.5)
    assert err64 < 0.02
    assert err128 < 0.7 * err64
    assert peak == pytest.approx(exact, rel=0.01)


def test_fan_line_integrals_of_a_disk_match_chord_lengths():
    n, radius, mu = 64, 20.0, 0.05
    x = _disk(n, radius, mu, 1.0)
    op = FanBeamRadon(
        n, 16, source_origin=100.0, origin_detector=50.0, n_detectors=100, detector_spacing=1.0
    )
    y = op(x)[0, 0]
    cx, cy = 0.1 * radius, -0.05 * radius
    # distance of the disk centre from each ray (source s, unit direction w)
    a = op.angles
    d = torch.stack([-torch.sin(a), torch.cos(a)], -1)
    e = torch.stack([torch.cos(a), torch.sin(a)], -1)
    u = torch.arange(100, dtype=torch.float64) - 49.5
    cell = 50.0 * d[:, None] + u[None, :, None] * e[:, None]
    src = -100.0 * d[:, None]
    w = (cell - src) / (cell - src).norm(dim=-1, keepdim=True)
    rel = torch.tensor([cx, cy], dtype=torch.float64) - src
    dist = (rel[..., 0] * w[..., 1] - rel[..., 1] * w[..., 0]).abs()
    chord = 2 * mu * torch.sqrt((radius**2 - dist**2).clamp(min=0))
    # same pixelisation error level as the parallel case at this resolution (about 1.2%)
    assert float((y - chord).norm() / chord.norm()) < 0.02


def test_autograd_gradient_is_the_adjoint():
    op = _fan(12, 9)
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, *op.out_shape, dtype=torch.float64)
    (g,) = torch.autograd.grad((op(x) * r).sum(), x)
    assert torch.allclose(g, op.adjoint(r), atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: op(t), (x,))
    yy = torch.randn(1, *op.out_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: op.adjoint(t), (yy,))


def test_default_detector_covers_the_diagonal():
    op = ParallelBeamRadon(100, 4, detector_spacing=0.5, pixel_size=1.0)
    assert op.n_detectors == math.ceil(math.sqrt(2) * 100 / 0.5)
    assert op.out_shape == (1, 4, op.n_detectors)
    assert ParallelBeamRadon(10, 3).angles.tolist() == pytest.approx(
        [0, math.pi / 3, 2 * math.pi / 3]
    )


def test_rotation_center_shifts_the_projection():
    x = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    x[0, 0, 10, 10] = 1.0  # pixel on the rotation axis
    op = ParallelBeamRadon(21, 6, n_detectors=31, rotation_center=12.0)
    y = op(x)[0, 0]
    assert torch.all(y.argmax(dim=1) == 12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 0, "angles": 4}, "image_size"),
        ({"image_size": 8, "angles": []}, "angles"),
        ({"image_size": 8, "angles": [0.0, float("nan")]}, "angles"),
        ({"image_size": 8, "angles": 4, "pixel_size": -1.0}, "pixel_size"),
        ({"image_size": 8, "angles": 4, "detector_spacing": 0.0}, "detector_spacing"),
        ({"image_size": 8, "angles": 4, "n_detectors": 0}, "n_detectors"),
        ({"image_size": 8, "angles": 4, "backend": "astra"}, "backend"),
    ],
)
def test_parallel_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParallelBeamRadon(**kwargs)


def test_fan_bad_arguments():
    with pytest.raises(ValueError, match="source_origin"):
        FanBeamRadon(
            32, 8, source_origin=20.0, origin_detector=10.0, n_detectors=40, detector_spacing=1.0
        )
    with pytest.raises(ValueError, match="origin_detector"):
        FanBeamRadon(
            32, 8, source_origin=100.0, origin_detector=-1.0, n_detectors=40, detector_spacing=1.0
        )


def test_bad_inputs_raise():
    op = _parallel(8, 3)
    with pytest.raises(ValueError, match="x: expected shape"):
        op(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="x: expected a real"):
        op(torch.zeros(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="y: expected shape"):
        op.adjoint(torch.zeros(1, 1, 8, 8))
    y = op(torch.zeros(1, 1, 8, 8))
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y: contains NaN"):
        op.fbp(y)
    with pytest.raises(ValueError, match="filter"):
        op.fbp(torch.zeros_like(y), filter="butterworth")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu():
    op = _fan(24, 10, curved=True)
    x = torch.randn(2, 1, 24, 24, dtype=torch.float64)
    y = op(x)
    yc = op(x.cuda())
    assert yc.device.type == "cuda"
    assert torch.allclose(yc.cpu(), y, atol=1e-10)
    assert torch.allclose(op.adjoint(y.cuda()).cpu(), op.adjoint(y), atol=1e-10)
    assert check_adjoint(op, (2, 1, 24, 24), torch.float64, device="cuda") < ADJOINT_TOL
    assert torch.allclose(op.fbp(y.cuda()).cpu(), op.fbp(y), atol=1e-8)
