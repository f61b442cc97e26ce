"""Named training data sets for learned priors: ``name -> generator(n, image_size, generator)``.

Each entry returns a real ``float32`` tensor of shape ``(n, channels, image_size,
image_size)`` in the data set's documented units; complex images come as 2 channels
``(real, imag)`` (the convention of :class:`diffinv.operators.RealToComplex`).  The domain
generators live in their own modules and are imported lazily, so a missing optional
generator only fails when that data set is requested.

================  ========  ==========================================  =================
name              channels  units                                       data_range
================  ========  ==========================================  =================
disks             1         intensity (arbitrary), background 0         (0, 1)
blackhole         1         Jy per pixel, field of view 160 uas         (0, p99.9 of data)
ct-phantom        1         linear attenuation (per pixel length)       (0, p99.9 of data)
mri-phantom       2         complex, magnitude in [0, 1], (real, imag)  (-1, 1)
natural-patches   1         grey level                                  (0, 1)
ct-anatomy        1         linear attenuation, 1/mm (water 0.02/mm)    (0, 0.048)
ct-anatomy-crops  1         as ct-anatomy: crops of 128-320 px slices   (0, 0.048)
mri-anatomy       2         complex, magnitude in [0, 1], (real, imag)  (-1, 1)
mri-anatomy-crops 2         as mri-anatomy: crops of 128-320 px slices  (-1, 1)
================  ========  ==========================================  =================

The ``*-anatomy`` sets render whole slices at ``image_size`` (same field of view at any
size); their ``*-crops`` variants are ``image_size`` crops of slices rendered at a random
size in [128, 320] (the training data of the shipped ``ct-anatomy`` / ``mri-anatomy``
priors, so they see the pixel scales of 128 to 320 pixel images).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["DatasetSpec", "register_dataset", "get_dataset", "list_datasets", "random_disks",
           "random_complex_phantoms", "estimate_range"]


@dataclass(frozen=True)
class DatasetSpec:
    """A named synthetic data set.

    Attributes
    ----------
    name : str
    fn : callable
        ``fn(n, image_size, generator) -> (n, channels, image_size, image_size)`` float32.
    channels : int
    units : str
        Physical units of the pixel values.
    data_range : tuple of float or None
        ``(lo, hi)`` of the values, or ``None`` to estimate it from samples (0.1% and
        99.9% quantiles, see :func:`estimate_range`).
    symmetric : bool
        ``True`` when values are signed around 0 (complex images): an estimated range is
        made symmetric ``(-a, a)``.
    source : str
        Module and function that generates the data (the "generator version" in model cards).
    description : str
    """

    name: str
    fn: Callable[[int, int, torch.Generator | None], torch.Tensor]
    channels: int
    units: str
    data_range: tuple[float, float] | None
    source: str
    description: str
    symmetric: bool = False

    def sample(self, n: int, image_size: int, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Draw ``n`` images, validated to ``(n, channels, image_size, image_size)`` float32."""
        if n < 1:
            raise ValueError(f"n: expected a positive number of images, got {n}")
        x = _as_channels(self.fn(n, image_size, generator))
        expected = (n, self.channels, image_size, image_size)
        if tuple(x.shape) != expected:
            raise ValueError(
                f"dataset {self.name!r}: generator returned shape {tuple(x.shape)}, "
                f"expected {expected}"
            )
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"dataset {self.name!r}: generator returned NaN or Inf")
        return x


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add (or replace) a data set under ``spec.name``."""
    _REGISTRY[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"dataset: unknown name {name!r}; expected one of {sorted(_REGISTRY)}"
        ) from None


def list_datasets() -> list[str]:
    """Registered data set names."""
    return sorted(_REGISTRY)


def estimate_range(x: torch.Tensor, symmetric: bool = False) -> tuple[float, float]:
    """Robust value range ``(q_0.001, q_0.999)`` of a sample (``(-a, a)`` if symmetric).

    Non-negative data (intensities, attenuation) get ``lo = 0`` exactly.
    """
    flat = x.reshape(-1).double()
    if flat.numel() > 2_000_000:
        flat = flat[:: flat.numel() // 2_000_000 + 1]
    if symmetric:
        a = float(torch.quantile(flat.abs(), 0.999))
        return (-a, a)
    lo, hi = torch.quantile(flat, torch.tensor([0.001, 0.999], dtype=flat.dtype)).tolist()
    if float(flat.min()) >= 0:
        lo = 0.0
    return (float(lo), float(hi))


def _as_channels(x: torch.Tensor) -> torch.Tensor:
    """``(n, H, W)`` -> ``(n, 1, H, W)``; complex ``(n, C, H, W)`` -> real ``(n, 2C, H, W)``."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[:, None]
    if x.is_complex():
        x = torch.cat([x.real, x.imag], dim=1)
    return x.to(torch.float32)


def _lazy(module: str, names: tuple[str, ...]) -> Callable:
    """First of ``names`` found in ``diffinv.datasets.<module>`` (imported on call)."""
    try:
        mod = importlib.import_module(f"diffinv.datasets.{module}")
    except ImportError as err:
        raise ValueError(
            f"dataset: generator module diffinv.datasets.{module} is not available ({err})"
        ) from None
    for name in names:
        if hasattr(mod, name):
            return getattr(mod, name)
    raise ValueError(f"dataset: diffinv.datasets.{module} has none of {names}")


def random_disks(n: int, image_size: int, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random discs on a black background (a smoke-test data set).

    Each image holds 1 to 3 discs with radius uniform in [0.08, 0.3] of the image size,
    centre uniform in the inner 70% of the field, and intensity uniform in [0.3, 1]; the
    edges are anti-aliased over one pixel and overlapping discs take the maximum, so values
    lie in [0, 1] (arbitrary intensity units).

    Returns
    -------
    torch.Tensor
        ``(n, 1, image_size, image_size)`` of ``dtype``.
    """
    if image_size < 4:
        raise ValueError(f"image_size: expected at least 4 pixels, got {image_size}")
    u = torch.rand(n, 3, 5, generator=generator, dtype=torch.float64)
    count = 1 + (u[:, 0, 4] * 3).floor().clamp(max=2)  # 1..3 discs
    coords = (torch.arange(image_size, dtype=torch.float64) + 0.5) / image_size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    img = torch.zeros(n, image_size, image_size, dtype=torch.float64)
    for k in range(3):
        cy = 0.15 + 0.7 * u[:, k, 0]
        cx = 0.15 + 0.7 * u[:, k, 1]
        r = 0.08 + 0.22 * u[:, k, 2]
        amp = (0.3 + 0.7 * u[:, k, 3]) * (k < count).double()
        dist = torch.sqrt((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2)
        edge = ((r[:, None, None] - dist) * image_size + 0.5).clamp(0.0, 1.0)
        img = torch.maximum(img, amp[:, None, None] * edge)
    return img[:, None].to(dtype)


def _blackhole(n: int, image_size: int, generator: torch.Generator | None) -> torch.Tensor:
    fn = _lazy("blackhole", ("random_blackhole_images",))
    return fn(n, image_size=image_size, fov_uas=160.0, generator=generator)


def _ct(n: int, image_size: int, generator: torch.Generator | None) -> torch.Tensor:
    fn = _lazy("ct_phantoms", ("random_ellipse_phantoms",))
    return fn(n, image_size, generator=generator)


def _patches(n: int, image_size: int, generator: torch.Generator | None) -> torch.Tensor:
    fn = _lazy("patches", ("natural_patches",))
    return fn(n, image_size, generator)


def _ellipse_masks(u: torch.Tensor, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    """Anti-aliased-free ellipse indicators; ``u`` (n, 5): cy, cx, a, b, angle."""
    cy, cx, a, b, t = (u[:, i, None, None] for i in range(5))
    dy, dx = yy - cy, xx - cx
    xr = dx * torch.cos(t) + dy * torch.sin(t)
    yr = -dx * torch.sin(t) + dy * torch.cos(t)
    return ((xr / a) ** 2 + (yr / b) ** 2 <= 1.0).double()


def random_complex_phantoms(n: int, image_size: int, generator: torch.Generator | None = None,
                            max_phase: float = math.pi / 2) -> torch.Tensor:
    r"""Random anatomical-style complex MR images ``m(r) exp(i phi(r))``.

    Magnitude (dimensionless, in [0, 1]): a head ellipse (semi-axes 0.6-0.85 of the half
    field of view, random tilt) with a bright rim (intensity 0.8-1, thickness 4-8% of the
    size, like scalp fat), tissue of intensity 0.3-0.5 inside, and 3-7 inner ellipses
    (ventricles, lesions, grey matter) of intensity 0.05-0.9.  Phase: a random global phase
    uniform in [-pi, pi) plus a smooth quadratic background whose amplitude is uniform in
    [0, ``max_phase``] (as B0/receive-coil phase in real MR images).

    Returns
    -------
    torch.Tensor
        ``(n, 1, image_size, image_size)`` complex64.
    """
    if image_size < 8:
        raise ValueError(f"image_size: expected at least 8 pixels, got {image_size}")
    f64 = torch.float64
    c = (torch.arange(image_size, dtype=f64) + 0.5) / image_size * 2 - 1
    yy, xx = torch.meshgrid(c, c, indexing="ij")

    def uni(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=generator, dtype=f64)

    a, b = uni(0.6, 0.85, n), uni(0.6, 0.85, n)
    head = torch.stack([uni(-0.05, 0.05, n), uni(-0.05, 0.05, n), a, b, uni(0, math.pi, n)], 1)
    rim = uni(0.08, 0.16, n)
    inner = head.clone()
    inner[:, 2] = a - rim
    inner[:, 3] = b - rim
    outer_m, inner_m = _ellipse_masks(head, yy, xx), _ellipse_masks(inner, yy, xx)
    mag = uni(0.8, 1.0, n)[:, None, None] * (outer_m - inner_m)
    mag = mag + uni(0.3, 0.5, n)[:, None, None] * inner_m
    count = 3 + (uni(0, 1, n) * 5).floor()
    for k in range(7):
        e = torch.stack([uni(-0.4, 0.4, n), uni(-0.4, 0.4, n), uni(0.05, 0.3, n),
                         uni(0.05, 0.3, n), uni(0, math.pi, n)], 1)
        m = _ellipse_masks(e, yy, xx) * inner_m * (k < count).double()[:, None, None]
        val = uni(0.05, 0.9, n)[:, None, None]
        mag = mag * (1 - m) + val * m
    coef = uni(-1, 1, n, 6)
    phase = (coef[:, 0, None, None] + coef[:, 1, None, None] * xx + coef[:, 2, None, None] * yy
             + coef[:, 3, None, None] * xx**2 + coef[:, 4, None, None] * yy**2
             + coef[:, 5, None, None] * xx * yy)
    amp = phase.abs().amax((1, 2), keepdim=True).clamp(min=1e-12)
    phase = phase / amp * uni(0, max_phase, n)[:, None, None] + uni(-math.pi, math.pi, n)[
        :, None, None]
    return torch.polar(mag, phase)[:, None].to(torch.complex64)


def _anatomy(module: str, name: str) -> Callable:
    def fn(n: int, image_size: int, generator: torch.Generator | None) -> torch.Tensor:
        return _lazy(module, (name,))(n, image_size, generator)

    fn.__name__ = f"_{name}"
    return fn


def _mri(n: int, image_size: int, generator: torch.Generator | None) -> torch.Tensor:
    return random_complex_phantoms(n, image_size, generator)


register_dataset(DatasetSpec(
    "disks", random_disks, 1, "intensity (arbitrary units)", (0.0, 1.0),
    "diffinv.datasets.registry.random_disks", "1-3 anti-aliased random discs (smoke test)"))
register_dataset(DatasetSpec(
    "blackhole", _blackhole, 1, "Jy per pixel (field of view 160 micro-arcseconds)", None,
    "diffinv.datasets.blackhole.random_blackhole_images",
    "EHT-like crescents/rings, diameter 35-50 uas, total flux about 0.6 Jy"))
register_dataset(DatasetSpec(
    "ct-phantom", _ct, 1, "linear attenuation coefficient", None,
    "diffinv.datasets.ct_phantoms.random_ellipse_phantoms",
    "random ellipse and Shepp-Logan-style phantoms"))
register_dataset(DatasetSpec(
    "mri-phantom", _mri, 2, "complex image, magnitude in [0, 1] (dimensionless), channels "
    "(real, imag)", (-1.0, 1.0), "diffinv.datasets.registry.random_complex_phantoms",
    "anatomical-style complex phantoms with smooth phase", symmetric=True))
register_dataset(DatasetSpec(
    "natural-patches", _patches, 1, "grey level", (0.0, 1.0),
    "diffinv.datasets.patches.natural_patches",
    "patches of the images bundled with scikit-image"))


_CT_UNITS = "linear attenuation coefficient, 1/mm (water 0.02/mm, air 0)"
_MRI_UNITS = "complex image, magnitude in [0, 1] (dimensionless), channels (real, imag)"
for _suffix, _what in (("", "whole slices at image_size"),
                       ("-crops", "random crops of slices rendered at 128-320 pixels")):
    _fn = "_crops" if _suffix else "_phantoms"
    register_dataset(DatasetSpec(
        f"ct-anatomy{_suffix}", _anatomy("ct_anatomy", f"ct_anatomy{_fn}"), 1, _CT_UNITS,
        (0.0, 0.048), f"diffinv.datasets.ct_anatomy.ct_anatomy{_fn}",
        f"anatomical CT phantoms (thorax/abdomen/head, bone, lungs, organs, vessels, "
        f"texture), {_what}"))
    register_dataset(DatasetSpec(
        f"mri-anatomy{_suffix}", _anatomy("mri_anatomy", f"mri_anatomy{_fn}"), 2, _MRI_UNITS,
        (-1.0, 1.0), f"diffinv.datasets.mri_anatomy.mri_anatomy{_fn}",
        f"complex brain-like MR phantoms (scalp, skull, CSF, folded grey/white matter, "
        f"ventricles, texture, smooth phase), {_what}", symmetric=True))
