r"""Fan-beam X-ray transform (flat or curved detector) with an exact transpose and FBP."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ...validation import positive_float
from ..noise import check_finite
from . import fbp as _fbp
from .geometry import as_angles, detector_positions, fan_rays
from .projector import RayTransform

__all__ = ["FanBeamRadon"]


class FanBeamRadon(RayTransform):
    r"""Fan-beam line integrals of an attenuation image.

    .. math::

        y_{a,k} = \int_0^{\infty} \mu\big(s_a + t\,\omega_{a,k}\big)\,dt,\qquad
        s_a = -R_{so}\,d_{\theta_a},

    with :math:`\omega_{a,k}` the unit vector from the source to detector cell ``k``: on a
    flat detector the cell centre is :math:`R_{od} d_\theta + u_k e_\theta`; on a curved
    (equiangular) detector the cell sits at fan angle :math:`\gamma_k = u_k / (R_{so}+R_{od})`
    from the central ray.  Axes, detector positions :math:`u_k` and image grid follow
    :mod:`diffinv.operators.ct.geometry`.  Discretised with Joseph's projector; the adjoint
    is its exact transpose.

    Convention mapping: ASTRA ``fanflat`` with the same angles, ``det_width = s / h`` and
    ``source_origin``, ``origin_det`` divided by ``h`` (ASTRA's unit pixels) uses our angle,
    detector orientation and centre: ``y = h * astra`` (``line_fanflat`` agrees to about
    0.6% on Shepp-Logan; see ``tests/operators/test_ct_references.py``).

    Parameters
    ----------
    image_size : int
        ``N``: images are ``N x N`` pixels.
    angles : int, sequence of float or torch.Tensor
        Source angles in radians.  FBP needs a full rotation (e.g.
        ``torch.arange(n) * 2 pi / n``); an int ``n`` means ``n`` angles over ``[0, 2 pi)``.
    source_origin : float
        Distance :math:`R_{so}` from the source to the rotation axis (length unit); must exceed
        the image half-diagonal.
    origin_detector : float
        Distance :math:`R_{od}` from the rotation axis to the detector centre (>= 0).
    n_detectors : int
        Detector cells.
    detector_spacing : float
        Cell pitch ``s`` on the detector (arc length for a curved detector).
    pixel_size : float
        Pixel side ``h``.
    curved : bool
        Equiangular (curved) detector instead of a flat one.
    backend : {"auto", "numba", "sparse"}
        Projector implementation, see :mod:`.projector`.

    Notes
    -----
    Input ``(batch, 1, N, N)`` attenuation in 1/length; output
    ``(batch, 1, n_angles, n_detectors)`` dimensionless line integrals.
    """

    def __init__(
        self,
        image_size: int,
        angles: torch.Tensor | Sequence[float] | int,
        source_origin: float,
        origin_detector: float,
        n_detectors: int,
        detector_spacing: float,
        pixel_size: float = 1.0,
        curved: bool = False,
        backend: str = "auto",
    ):
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
        h = positive_float("pixel_size", pixel_size)
        spacing = positive_float("detector_spacing", detector_spacing)
        r_so = positive_float("source_origin", source_origin)
        r_od = float(origin_detector)
        if not (math.isfinite(r_od) and r_od >= 0):
            raise ValueError(
                f"origin_detector: expected a finite number >= 0, got {origin_detector!r}"
            )
        half_diag = math.sqrt(2.0) * image_size * h / 2
        if r_so <= half_diag:
            raise ValueError(
                f"source_origin: expected a distance beyond the image half-diagonal "
                f"({half_diag:g}), got {r_so:g}"
            )
        if isinstance(n_detectors, bool) or not isinstance(n_detectors, int) or n_detectors < 1:
            raise ValueError(f"n_detectors: expected a positive int, got {n_detectors!r}")
        if isinstance(angles, int) and not isinstance(angles, bool):
            if angles < 1:
                raise ValueError(f"angles: expected a positive number of angles, got {angles}")
            angles = torch.arange(angles, dtype=torch.float64) * (2 * math.pi / angles)
        if curved:
            half_fan = (n_detectors / 2) * spacing / (r_so + r_od)
            if half_fan >= math.pi / 2:
                raise ValueError("detector_spacing: the curved detector spans a fan of >= 180 deg")
        self.angles = as_angles(angles)
        self.source_origin = r_so
        self.origin_detector = r_od
        self.detector_spacing = spacing
        self.curved = bool(curved)
        origin, direction = fan_rays(self.angles, r_so, r_od, n_detectors, spacing, self.curved)
        super().__init__(
            image_size, self.angles.numel(), n_detectors, origin, direction, h, backend
        )

    @property
    def magnification(self) -> float:
        """``(R_so + R_od) / R_so``: detector length per length at the rotation axis."""
        return (self.source_origin + self.origin_detector) / self.source_origin

    def _to_virtual_flat(self, y: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Data on the flat virtual detector through the axis, and its cell spacing."""
        mag = self.magnification
        tau = self.detector_spacing / mag
        if not self.curved:
            return y, tau
        r_sd = self.source_origin + self.origin_detector
        half_fan = (self.n_detectors - 1) / 2 * self.detector_spacing / r_sd
        n_virt = 2 * math.ceil(self.source_origin * math.tan(half_fan) / tau) + 1
        s = detector_positions(n_virt, tau).to(device=y.device, dtype=y.dtype)
        gamma = torch.atan(s / self.source_origin)
        idx = gamma * r_sd / self.detector_spacing + (self.n_detectors - 1) / 2
        idx = idx[None].expand(self.n_angles, -1)
        out = _fbp.interpolate_detector(y[:, 0], idx)
        return out[:, None], tau

    def fbp(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """Fan-beam filtered back-projection (Kak & Slaney, equally spaced detectors).

        Parameters
        ----------
        y : torch.Tensor
            ``(batch, 1, n_angles, n_detectors)`` line integrals from a full rotation.
        filter : {"ramp", "shepp-logan", "cosine", "hann"}

        Returns
        -------
        torch.Tensor
            ``(batch, 1, N, N)`` in the operator's input units.
        """
        self._check(y, self.out_shape, "y")
        check_finite("y", y)
        p, tau = self._to_virtual_flat(y)
        s = detector_positions(p.shape[-1], tau).to(device=y.device, dtype=y.dtype)
        r = self.source_origin
        p = p * (r / torch.sqrt(r * r + s * s))
        q = 0.5 * _fbp.filter_sinogram(p, tau, filter)
        w = _fbp.angular_weights(self.angles, 2 * math.pi)
        return _fbp.backproject_fan(
            q, self.angles, w, self.image_size, self.pixel_size, tau, self.source_origin
        )
