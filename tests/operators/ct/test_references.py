"""CT projectors against independent implementations: ASTRA (CPU) and scikit-image.

Convention mapping (checked below):

* ASTRA ``parallel`` and ``fanflat`` geometries use the same angle, detector orientation and
  detector centre as ours (ASTRA's cell ``k`` is our cell ``k``); ASTRA's volume has unit
  pixels, so with our ``pixel_size = h`` we pass ``detector_width = s / h`` and fan
  distances ``R / h``, and multiply ASTRA's sinogram by ``h``.  ASTRA's ``linear`` projector
  is Joseph's method as ours (agreement to float32 rounding); ``line`` / ``line_fanflat``
  weight each pixel by its exact intersection length, which differs at edges.
* scikit-image ``radon(image, theta_deg)`` puts image row 0 at the bottom and turns the
  other way: ours at angle ``t`` equals ``radon(image[::-1], -degrees(t))`` with
  ``circle=True`` and ``n_detectors = N``, ``s = h = 1``.  skimage rotates about pixel
  ``N // 2``, ours about the grid centre ``(N - 1) / 2``, so for even ``N`` the two differ by
  a half-pixel shift; odd ``N`` removes it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffinv.datasets.ct_phantoms import shepp_logan
from diffinv.operators.ct import FanBeamRadon, ParallelBeamRadon


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def phantom():
    return shepp_logan(128, dtype=torch.float64)


def _astra_project(kind, proj_geom, image: np.ndarray) -> np.ndarray:
    astra = pytest.importorskip("astra")
    n = image.shape[0]
    vol = astra.create_vol_geom(n, n)
    pid = astra.create_projector(kind, proj_geom, vol)
    try:
        w = astra.OpTomo(pid)
        return (w * image.astype(np.float32).ravel()).reshape(
            proj_geom["ProjectionAngles"].size, -1
        )
    finally:
        astra.projector.delete(pid)


@pytest.mark.parametrize("kind, tol", [("linear", 1e-4), ("line", 0.03)])
@pytest.mark.parametrize("pixel_size", [1.0, 0.5])
def test_parallel_matches_astra(phantom, kind, tol, pixel_size):
    astra = pytest.importorskip("astra")
    angles = torch.linspace(0, math.pi, 91, dtype=torch.float64)[:-1] + 0.05
    s = 1.25 * pixel_size
    op = ParallelBeamRadon(128, angles, n_detectors=150, detector_spacing=s, pixel_size=pixel_size)
    ours = op(phantom)[0, 0].numpy()
    geom = astra.create_proj_geom("parallel", s / pixel_size, 150, angles.numpy())
    ref = pixel_size * _astra_project(kind, geom, phantom[0, 0].numpy())
    assert _rel(ours, ref) < tol


@pytest.mark.parametrize("pixel_size", [1.0, 0.5])
def test_fan_flat_matches_astra(phantom, pixel_size):
    astra = pytest.importorskip("astra")
    angles = torch.arange(72, dtype=torch.float64) * (2 * math.pi / 72)
    r_so, r_od, s = 150.0 * pixel_size, 90.0 * pixel_size, 1.6 * pixel_size
    op = FanBeamRadon(128, angles, r_so, r_od, 180, s, pixel_size=pixel_size)
    ours = op(phantom)[0, 0].numpy()
    geom = astra.create_proj_geom(
        "fanflat", s / pixel_size, 180, angles.numpy(), r_so / pixel_size, r_od / pixel_size
    )
    ref = pixel_size * _astra_project("line_fanflat", geom, phantom[0, 0].numpy())
    assert _rel(ours, ref) < 0.03
    # a mirrored detector would be far off: the orientation is really the same
    assert _rel(ours[:, ::-1], ref) > 0.1


@pytest.mark.parametrize("n", [129, 128])
def test_parallel_matches_skimage_radon(n):
    transform = pytest.importorskip("skimage.transform")
    x = shepp_logan(n, dtype=torch.float64)
    angles = torch.arange(60, dtype=torch.float64) * (math.pi / 60) + 0.02
    op = ParallelBeamRadon(n, angles, n_detectors=n)
    ours = op(x)[0, 0].numpy()
    image = np.ascontiguousarray(x[0, 0].numpy()[::-1])
    ref = transform.radon(image, -np.rad2deg(angles.numpy()), circle=True).T
    assert _rel(ours, ref) < 0.08
    if n % 2:
        assert _rel(ours, ref) < 0.01  # same rotation centre: only the discretisation differs
