r"""Complex brain-like MR phantoms ``m(r) exp(i phi(r))`` with anatomy and texture.

Magnitude (dimensionless, in [0, 1]) of one axial head slice, painted from perturbed
ellipses and thresholded random fields (:mod:`diffinv.datasets.anatomy_shapes`):

* scalp (subcutaneous fat), skull (dark cortical tables, marrow-filled diploe), a CSF rim;
* brain with a folded grey/white matter boundary: white matter where the relative depth
  below the brain surface exceeds the cortical thickness plus a band-limited random field
  (gyri), sulci as thin CSF ridges of a second random field in the cortical band, and the
  interhemispheric fissure along the midline;
* lateral ventricles (CSF), deep grey nuclei beside them, 0-2 lesions;
* multiplicative tissue texture (2-6%) and a smooth receive-coil bias field (up to +-30%).

Contrast is drawn per image among T1-, T2- and proton-density-like weightings (relative
intensities of fat, white matter, grey matter, CSF, bone, marrow jittered by +-10%); the
image is scaled so that its maximum magnitude is uniform in [0.8, 1].  The background is 0
(noise-free).  Phase: a global phase uniform in [-pi, pi) plus a smooth random field
(B0 / coil phase, a few cycles per field of view) of standard deviation uniform in
[0, pi/2].

The slice spans the normalised field of view ``[-1, 1]^2`` (nominally 240 mm); the same
generator state renders the same phantom at any size ``N`` (random numbers are drawn
independently of ``N``).
"""

from __future__ import annotations

import math

import torch

from .anatomy_shapes import Canvas, Draw, check_count_size, random_crops, soft_step

__all__ = ["mri_anatomy_phantoms", "mri_anatomy_crops", "WEIGHTINGS"]

#: Relative intensities per weighting: fat, white matter, grey matter, CSF, bone, marrow.
WEIGHTINGS = {
    "T1": (1.0, 0.78, 0.52, 0.12, 0.04, 0.75),
    "T2": (0.65, 0.40, 0.56, 1.0, 0.04, 0.5),
    "PD": (0.85, 0.62, 0.78, 0.88, 0.05, 0.7),
}


def _magnitude(c: Canvas, d: Draw) -> torch.Tensor:
    name = list(WEIGHTINGS)[int(d.choice((1.0, 1.0, 1.0), 1))]
    fat, wm, gm, csf, bone, marrow = (v * float(d.uniform(0.9, 1.1)) for v in WEIGHTINGS[name])
    cx, cy = float(d.uniform(-0.05, 0.05)), float(d.uniform(-0.05, 0.05))
    a, b = float(d.uniform(0.6, 0.75)), float(d.uniform(0.74, 0.9))
    th, h = float(d.uniform(-0.15, 0.15)), c.harmonics(3, 0.05)
    t_scalp, t_skull, t_csf = (float(d.uniform(0.025, 0.05)), float(d.uniform(0.03, 0.055)),
                               float(d.uniform(0.008, 0.025)))
    a, b = c.skull(cx, cy, a, b, th, h, (t_scalp, fat), bone, marrow, t_skull, csf)
    a, b = a - t_csf, b - t_csf
    scale = math.sqrt(a * b)
    q = c.radius(cx, cy, a, b, th, h)
    gyri = c.field(24, 5.0, 2.0, 9.0)
    sulci = c.field(32, 8.0, 2.0, 12.0)
    tex = c.field(32, 6.0, 2.5, 16.0)
    cortex = float(d.uniform(0.1, 0.18))
    white = soft_step((1 - cortex - q + float(d.uniform(0.05, 0.09)) * gyri) * scale, c.n)
    brain = soft_step((1 - q) * scale, c.n)
    tissue = (gm + (wm - gm) * white) * (1 + float(d.uniform(0.02, 0.06)) * tex)
    # sulci: thin ridges of a random field, in the cortical band only; the midline fissure
    band = soft_step((q - 1 + cortex + 0.04) * scale, c.n)
    width = float(d.uniform(0.06, 0.12))
    ridge = torch.exp(-(sulci / width) ** 2) * band
    u = (c.X - cx) * math.cos(th) + (c.Y - cy) * math.sin(th)
    v = -(c.X - cx) * math.sin(th) + (c.Y - cy) * math.cos(th)
    fissure = soft_step(0.006 + 0.01 * float(d.uniform(0, 1)) - u.abs(), c.n) * (
        (v / b).abs() > float(d.uniform(0.15, 0.35))).double()
    ridge = torch.maximum(ridge, fissure)
    c.paint(brain, tissue + (csf - tissue) * ridge)
    for side in (-1, 1):  # deep grey nuclei, then the lateral ventricles
        c.paint(c.mask(cx + side * float(d.uniform(0.14, 0.2)), cy + float(d.uniform(-0.1, 0.05)),
                       float(d.uniform(0.05, 0.08)), float(d.uniform(0.08, 0.13)),
                       th - side * float(d.uniform(0.1, 0.4)), c.harmonics(2, 0.1)),
                gm * (1 + 0.03 * tex))
        c.paint(c.mask(cx + side * float(d.uniform(0.04, 0.08)), cy + float(d.uniform(-0.05,
                       0.1)), float(d.uniform(0.03, 0.06)), float(d.uniform(0.12, 0.25)) * b / 0.7,
                       th + side * float(d.uniform(0.05, 0.35)), c.harmonics(3, 0.15)), csf)
    for _ in range(int(d.uniform(0, 3))):  # lesions (bright or dark)
        r, ang = 0.6 * math.sqrt(float(d.uniform(0, 1))), float(d.uniform(0, 2 * math.pi))
        c.paint(c.mask(cx + r * a * math.cos(ang), cy + r * b * math.sin(ang),
                       float(d.uniform(0.015, 0.06)), float(d.uniform(0.015, 0.06)),
                       float(d.uniform(0, math.pi)), c.harmonics(3, 0.2)),
                float(d.uniform(0.1, 1.0)))
    bias = torch.exp(float(d.uniform(0.0, 0.3)) * c.field(3, 1.5, 2.0, 2.0) / 1.5)
    mag = (c.img * bias).clamp(min=0.0)
    return mag * (float(d.uniform(0.8, 1.0)) / mag.max().clamp(min=1e-12))


def mri_anatomy_phantoms(n: int, image_size: int, generator: torch.Generator | None = None
                         ) -> torch.Tensor:
    """Random complex brain-like MR slices; see the module docstring.

    Parameters
    ----------
    n : int
    image_size : int
        ``N`` (at least 8; meant for 128-320).
    generator : torch.Generator, optional
        CPU generator; the same state gives the same phantoms (at any ``N``).

    Returns
    -------
    torch.Tensor
        ``(n, 1, N, N)`` complex64 with magnitude in [0, 1].
    """
    check_count_size(n, image_size)
    d = Draw(generator)
    out = torch.empty(n, 1, image_size, image_size, dtype=torch.complex64)
    for i in range(n):
        c = Canvas(image_size, d)
        mag = _magnitude(c, d)
        phase = (float(d.uniform(-math.pi, math.pi))
                 + float(d.uniform(0.0, math.pi / 2)) * c.field(4, 2.0, 2.0, 2.5))
        out[i, 0] = torch.polar(mag, phase).to(torch.complex64)
    return out


def mri_anatomy_crops(n: int, image_size: int, generator: torch.Generator | None = None,
                      sizes: tuple[int, int] = (128, 320)) -> torch.Tensor:
    """``image_size x image_size`` random crops of :func:`mri_anatomy_phantoms` rendered at
    random sizes in ``sizes`` (the training data of the ``mri-anatomy`` prior): ``(n, 1, s,
    s)`` complex64."""
    check_count_size(n, image_size)
    return random_crops(mri_anatomy_phantoms, n, image_size, generator, sizes)
