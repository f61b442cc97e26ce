r"""Anatomical CT phantoms (thorax, abdomen, head) in linear attenuation units (1/mm).

Each phantom is one axial slice drawn at random among three body regions (probabilities
0.4 thorax, 0.35 abdomen, 0.25 head) and painted layer by layer from perturbed ellipses
(:mod:`diffinv.datasets.anatomy_shapes`), with values as multiples of the attenuation of
water ``MU_WATER = 0.02/mm`` (about 0.2/cm near 60-70 keV; air 0, so ``HU = 1000 (mu /
mu_water - 1)``):

=================================  ===================  ========================
tissue                             mu / mu_water        HU (approx.)
=================================  ===================  ========================
air (outside, bowel gas, sinuses)  0                    -1000
lung parenchyma                    0.12-0.25            -880 to -750
fat (subcutaneous, mediastinal)    0.88-0.95            -120 to -50
soft tissue, muscle, organs        1.00-1.10            0 to 100
contrast-filled vessels/chambers   1.10-1.45            100 to 450
marrow / trabecular bone           1.10-1.35            100 to 350
cortical bone (ribs, spine, skull) 1.70-2.40            700 to 1400
=================================  ===================  ========================

Structure: body outline with a subcutaneous fat layer and a muscle wall; thorax: lungs with
a vessel tree (thin ridges of a band-limited random field), heart with contrast-filled
chambers, aorta, vertebra (cortical ring, marrow, spinous process), ribs (cortical rings
with marrow); abdomen: liver with enhancing vessels, spleen, kidneys (cortex, medulla),
bowel loops with gas, fluid or oral contrast, vertebra, aorta; head: scalp, skull (two
cortical tables with diploe), brain with grey/white matter from a thresholded random field,
ventricles, frontal sinuses.  Every region carries band-limited multiplicative texture (1-3%
in soft tissue, 20-40% in lung) and 0-3 small lesions (5-25% contrast).  Everything lies in
the inscribed circle of the field of view, so every projection sees the whole object.

Geometry: the slice spans the normalised field of view ``[-1, 1]^2`` (``x`` right, ``y``
up = anterior, row 0 at the top), nominally 400 mm wide for thorax/abdomen and 250 mm for
the head.  A CT operator on an ``N x N`` grid should use ``pixel_size = FOV / N`` mm, so the
projections are dimensionless line integrals.  The same generator state renders the same
phantom at any ``N`` (all random numbers are drawn independently of the size), pixels carry
partial-volume values along edges.
"""

from __future__ import annotations

import math

import torch

from .anatomy_shapes import Canvas, Draw, check_count_size, random_crops, soft_step
from .ct_phantoms import MU_WATER

__all__ = ["ct_anatomy_phantoms", "ct_anatomy_crops", "MU_WATER", "REGIONS"]

#: Body regions and their probabilities.
REGIONS = (("thorax", 0.4), ("abdomen", 0.35), ("head", 0.25))


def _bone(c: Canvas, cx, cy, a, b, theta, cortex, thickness, marrow) -> None:
    """A bone cross-section: cortical ring of ``thickness`` around marrow."""
    h = c.harmonics(2, 0.05)
    c.paint(c.mask(cx, cy, a, b, theta, h), cortex)
    c.paint(c.mask(cx, cy, max(a - thickness, 0.3 * a), max(b - thickness, 0.3 * b), theta, h),
            marrow)


def _vertebra(c: Canvas, d: Draw, cx: float, cy: float, size: float) -> None:
    cortex, marrow = float(d.uniform(1.7, 2.4)), float(d.uniform(1.1, 1.35))
    t = float(d.uniform(0.010, 0.022))
    _bone(c, cx, cy, size, size * float(d.uniform(0.8, 1.0)), 0.0, cortex, t, marrow)
    # posterior arch and spinous process (below: y is anterior-up)
    c.paint(c.mask(cx, cy - 1.45 * size, 0.25 * size, 0.55 * size), cortex)
    for side in (-1, 1):
        c.paint(c.mask(cx + side * 0.75 * size, cy - 1.0 * size, 0.22 * size, 0.45 * size,
                       side * 0.6), cortex)


def _body(c: Canvas, d: Draw, abdomen: bool) -> tuple[float, float, float, float, float]:
    """Outline, fat, muscle wall; returns the inner cavity (cx, cy, a, b, soft-tissue value)."""
    cx, cy = float(d.uniform(-0.04, 0.04)), float(d.uniform(-0.05, 0.03))
    a, b = float(d.uniform(0.70, 0.88)), float(d.uniform(0.48, 0.66))
    if abdomen:
        b = float(d.uniform(0.52, 0.7))
    h = c.harmonics(3, 0.04)
    fat, muscle = float(d.uniform(0.88, 0.95)), float(d.uniform(1.03, 1.07))
    tf, tm = float(d.uniform(0.02, 0.08)), float(d.uniform(0.025, 0.05))
    tex = c.field(24, 4.0, 2.0, 12.0)
    c.paint(c.mask(cx, cy, a, b, 0.0, h), fat * (1 + 0.01 * tex))
    c.paint(c.mask(cx, cy, a - tf, b - tf, 0.0, h), muscle * (1 + 0.015 * tex))
    a_in, b_in = a - tf - tm, b - tf - tm
    soft = float(d.uniform(0.94, 1.02))
    c.paint(c.mask(cx, cy, a_in, b_in, 0.0, h), soft * (1 + 0.02 * tex))
    # ribs (thorax) or lower ribs / transverse muscles (abdomen) in the muscle wall
    n_ribs = int(d.uniform(4, 11)) if not abdomen else int(d.uniform(0, 5))
    for _ in range(n_ribs):
        ang = float(d.uniform(0.15, math.pi - 0.15)) * (1 if float(d.uniform(0, 1)) < 0.5
                                                        else -1) + math.pi / 2
        r = 1 - float(d.uniform(0.0, 0.05))
        rx = cx + (a - tf - 0.5 * tm) * r * math.cos(ang)
        ry = cy + (b - tf - 0.5 * tm) * r * math.sin(ang)
        _bone(c, rx, ry, float(d.uniform(0.018, 0.035)), float(d.uniform(0.010, 0.018)),
              ang + math.pi / 2, float(d.uniform(1.7, 2.3)), 0.006, float(d.uniform(1.1, 1.3)))
    return cx, cy, a_in, b_in, soft


def _thorax(c: Canvas, d: Draw) -> None:
    cx, cy, a, b, soft = _body(c, d, abdomen=False)
    lung = float(d.uniform(0.12, 0.25))
    tex = c.field(32, 6.0, 2.5, 16.0)
    vessels = torch.exp(-(c.field(32, 8.0, 2.0, 14.0) / float(d.uniform(0.05, 0.12))) ** 2)
    vessel_val = float(d.uniform(0.9, 1.1))
    for side in (-1, 1):
        lx = cx + side * float(d.uniform(0.30, 0.40)) * a / 0.7
        m = c.mask(lx, cy + float(d.uniform(-0.02, 0.1)) * b, float(d.uniform(0.26, 0.34)) * a
                   / 0.7, float(d.uniform(0.62, 0.8)) * b, side * float(d.uniform(0.0, 0.2)),
                   c.harmonics(3, 0.12))
        parenchyma = lung * (1 + float(d.uniform(0.2, 0.4)) * tex)
        c.paint(m, parenchyma + (vessel_val - parenchyma) * vessels)
    # heart (myocardium, contrast-filled chambers) and aorta
    hx, hy = cx + float(d.uniform(-0.02, 0.12)), cy + float(d.uniform(-0.05, 0.2)) * b
    ha, hb = float(d.uniform(0.17, 0.24)), float(d.uniform(0.15, 0.22))
    c.paint(c.mask(hx, hy, ha, hb, float(d.uniform(-0.6, 0.6)), c.harmonics(3, 0.1)),
            float(d.uniform(1.03, 1.08)))
    blood = float(d.uniform(1.1, 1.45))
    for _ in range(int(d.uniform(1, 4))):
        c.paint(c.mask(hx + float(d.uniform(-0.5, 0.5)) * ha, hy + float(d.uniform(-0.5, 0.5))
                       * hb, float(d.uniform(0.25, 0.45)) * ha, float(d.uniform(0.25, 0.45)) * hb,
                       float(d.uniform(0, math.pi)), c.harmonics(2, 0.1)), blood)
    spine_y = cy - b * float(d.uniform(0.55, 0.7))
    c.paint(c.mask(cx + float(d.uniform(-0.12, -0.04)), spine_y + float(d.uniform(0.1, 0.17)),
                   *(2 * [float(d.uniform(0.03, 0.05))])), blood)
    _vertebra(c, d, cx + float(d.uniform(-0.02, 0.02)), spine_y, float(d.uniform(0.06, 0.09)))
    _lesions(c, d, cx, cy, a, b, soft)


def _abdomen(c: Canvas, d: Draw) -> None:
    cx, cy, a, b, soft = _body(c, d, abdomen=True)
    organ_tex = c.field(32, 6.0, 2.5, 16.0)
    vessels = torch.exp(-(c.field(24, 6.0, 2.0, 10.0) / float(d.uniform(0.04, 0.08))) ** 2)
    liver = float(d.uniform(1.04, 1.09))
    contrast = float(d.uniform(1.1, 1.3))
    # liver (image left = patient right) with enhancing vessels, spleen
    c.paint(c.mask(cx - float(d.uniform(0.2, 0.32)) * a / 0.7, cy + float(d.uniform(0.0, 0.2))
                   * b, float(d.uniform(0.28, 0.38)) * a / 0.7, float(d.uniform(0.5, 0.7)) * b,
                   float(d.uniform(-0.4, 0.4)), c.harmonics(4, 0.15)),
            liver * (1 + 0.015 * organ_tex) + (contrast - liver) * vessels)
    c.paint(c.mask(cx + float(d.uniform(0.3, 0.42)) * a / 0.7, cy + float(d.uniform(-0.1, 0.2))
                   * b, float(d.uniform(0.08, 0.14)), float(d.uniform(0.14, 0.22)),
                   float(d.uniform(-0.8, 0.8)), c.harmonics(3, 0.12)),
            float(d.uniform(1.03, 1.08)) * (1 + 0.015 * organ_tex))
    # bowel loops: gas, fluid or oral contrast, with a soft-tissue wall
    for _ in range(int(d.uniform(3, 10))):
        bx = cx + float(d.uniform(-0.45, 0.45)) * a
        by = cy + float(d.uniform(-0.1, 0.6)) * b
        r1, r2 = float(d.uniform(0.03, 0.08)), float(d.uniform(0.03, 0.08))
        th, hh = float(d.uniform(0, math.pi)), c.harmonics(3, 0.15)
        content = (0.0, 1.0, float(d.uniform(1.3, 1.7)))[int(d.choice((0.4, 0.35, 0.25), 1))]
        c.paint(c.mask(bx, by, r1, r2, th, hh), float(d.uniform(1.02, 1.08)))
        c.paint(c.mask(bx, by, 0.75 * r1, 0.75 * r2, th, hh), content)
    spine_y = cy - b * float(d.uniform(0.5, 0.65))
    sz = float(d.uniform(0.07, 0.1))
    # kidneys beside the spine: enhancing cortex, medulla
    cortex, medulla = float(d.uniform(1.15, 1.35)), float(d.uniform(1.03, 1.1))
    for side in (-1, 1):
        kx, ky = cx + side * float(d.uniform(0.2, 0.28)), spine_y + float(d.uniform(0.0, 0.1))
        ka, kb, kt = float(d.uniform(0.06, 0.09)), float(d.uniform(0.09, 0.13)), side * float(
            d.uniform(0.2, 0.6))
        hh = c.harmonics(2, 0.08)
        c.paint(c.mask(kx, ky, ka, kb, kt, hh), cortex)
        c.paint(c.mask(kx + side * 0.01, ky, 0.55 * ka, 0.6 * kb, kt, hh), medulla)
    c.paint(c.mask(cx + float(d.uniform(-0.06, 0.0)), spine_y + sz + 0.04,
                   *(2 * [float(d.uniform(0.025, 0.04))])), contrast)
    _vertebra(c, d, cx + float(d.uniform(-0.02, 0.02)), spine_y, sz)
    _lesions(c, d, cx, cy, a, b, soft)


def _head(c: Canvas, d: Draw) -> None:
    cx, cy = float(d.uniform(-0.04, 0.04)), float(d.uniform(-0.04, 0.04))
    a, b = float(d.uniform(0.6, 0.72)), float(d.uniform(0.74, 0.88))
    th, h = float(d.uniform(-0.12, 0.12)), c.harmonics(3, 0.05)
    scalp, t_scalp = float(d.uniform(1.0, 1.06)), float(d.uniform(0.02, 0.04))
    cortex, diploe = float(d.uniform(1.8, 2.4)), float(d.uniform(1.2, 1.5))
    t_skull = float(d.uniform(0.035, 0.06))
    csf = float(d.uniform(0.99, 1.01))
    b1 = b - t_scalp
    a2, b2 = c.skull(cx, cy, a, b, th, h, (t_scalp, scalp), cortex, diploe, t_skull, csf)
    # brain: grey/white matter boundary from a thresholded random field
    q = c.radius(cx, cy, a2 - 0.01, b2 - 0.01, th, h)
    gm, wm = float(d.uniform(1.035, 1.05)), float(d.uniform(1.02, 1.03))
    fold = c.field(24, 6.0, 2.0, 10.0)
    depth = float(d.uniform(0.12, 0.22))
    white = soft_step((1 - depth - q + 0.06 * fold) * math.sqrt(a2 * b2), c.n)
    brain = soft_step((1 - q) * math.sqrt(a2 * b2), c.n)
    tex = c.field(32, 6.0, 2.5, 16.0)
    c.paint(brain, (gm + (wm - gm) * white) * (1 + 0.006 * tex))
    for side in (-1, 1):  # lateral ventricles
        c.paint(c.mask(cx + side * float(d.uniform(0.04, 0.08)), cy + float(d.uniform(-0.05,
                       0.1)), float(d.uniform(0.03, 0.06)), float(d.uniform(0.1, 0.22)) * b / 0.8,
                       th + side * float(d.uniform(0.05, 0.35)), c.harmonics(3, 0.15)), csf)
    for _ in range(int(d.uniform(0, 3))):  # frontal sinuses / mastoid air
        c.paint(c.mask(cx + float(d.uniform(-0.12, 0.12)), cy + b1 - float(d.uniform(0.03, 0.08)),
                       float(d.uniform(0.015, 0.04)), float(d.uniform(0.015, 0.03)),
                       float(d.uniform(0, math.pi))), 0.0)
    _lesions(c, d, cx, cy, 0.6 * a2, 0.6 * b2, gm)


def _lesions(c: Canvas, d: Draw, cx: float, cy: float, a: float, b: float, base: float) -> None:
    """0-3 small lesions of 5-25% contrast (hypo- or hyper-dense) inside ``(a, b)``."""
    for _ in range(int(d.uniform(0, 4))):
        r = math.sqrt(float(d.uniform(0, 1))) * 0.8
        ang = float(d.uniform(0, 2 * math.pi))
        sign = 1.0 if float(d.uniform(0, 1)) < 0.5 else -1.0
        c.paint(c.mask(cx + r * a * math.cos(ang), cy + r * b * math.sin(ang),
                       float(d.uniform(0.01, 0.05)), float(d.uniform(0.01, 0.05)),
                       float(d.uniform(0, math.pi)), c.harmonics(3, 0.2)),
                base * (1 + sign * float(d.uniform(0.05, 0.25))))


_PAINTERS = {"thorax": _thorax, "abdomen": _abdomen, "head": _head}


def ct_anatomy_phantoms(n: int, image_size: int, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random anatomical CT slices in linear attenuation units (1/mm); see the module
    docstring for the anatomy, values and geometry.

    Parameters
    ----------
    n : int
        Number of phantoms.
    image_size : int
        ``N`` (at least 8; meant for 128-320).
    generator : torch.Generator, optional
        CPU generator; the same state gives the same phantoms (at any ``N``).
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        ``(n, 1, N, N)`` non-negative, at most ``2.4 * MU_WATER``.
    """
    check_count_size(n, image_size)
    d = Draw(generator)
    names = [name for name, _ in REGIONS]
    kinds = d.choice(tuple(p for _, p in REGIONS), n).tolist()
    out = torch.empty(n, 1, image_size, image_size, dtype=dtype)
    for i, k in enumerate(kinds):
        c = Canvas(image_size, d)
        _PAINTERS[names[k]](c, d)
        inside = soft_step(0.98 - torch.sqrt(c.X**2 + c.Y**2), image_size)
        out[i, 0] = (MU_WATER * (c.img * inside).clamp(0.0, 2.4)).to(dtype)
    return out


def ct_anatomy_crops(n: int, image_size: int, generator: torch.Generator | None = None,
                     sizes: tuple[int, int] = (128, 320)) -> torch.Tensor:
    """``image_size x image_size`` random crops of :func:`ct_anatomy_phantoms` rendered at
    random sizes in ``sizes`` (the training data of the ``ct-anatomy`` prior): ``(n, 1, s,
    s)`` float32 in 1/mm."""
    check_count_size(n, image_size)
    return random_crops(ct_anatomy_phantoms, n, image_size, generator, sizes)
