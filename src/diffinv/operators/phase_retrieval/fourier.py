r"""Oversampled Fourier phase retrieval (far-field coherent diffraction imaging).

Forward model, for an object ``x`` of ``H x W`` pixels (real or complex, ``C`` channels
treated independently):

.. math::

    y = |F_c\, P x|^2 \qquad (\text{or } |F_c P x| \text{ with } measure="amplitude")

where ``P`` zero-pads the object to an ``M_h x M_w`` grid and ``F_c`` is the centred
orthonormal DFT (zero frequency at pixel ``(M_h // 2, M_w // 2)``).  ``B = F_c P`` is the
linear part (:attr:`FourierPhaseRetrieval.linear`); since ``F_c`` is unitary,
``B^H B = I`` (``B`` is an isometry) and ``sum(y) = ||x||^2``.

Padding convention (stated explicitly because codes differ):

* **default** -- ``oversampling`` is the ratio of the padded to the object linear size:
  ``M = round(oversampling * H)``, the object sits in the middle with
  ``(M - H) // 2`` zeros before and the rest after.  The default ``oversampling=2.0``
  (``M = 2H``, the Nyquist rate of the autocorrelation) is the classical CDI
  setting under which the uniqueness results and HIO/RAAR behave as in the literature.
* **DPS/DAPS code convention** -- :meth:`FourierPhaseRetrieval.dps_convention` pads
  ``int(oversample / 8 * H)`` zeros on *each* side, so the code's ``oversample=2.0``
  gives ``M = 1.5 H`` (linear oversampling 1.5, not 2).  Equivalent to
  ``FourierPhaseRetrieval(H, padding=int(oversample / 8 * H))``.  Those codes also measure
  amplitudes (``measure="amplitude"``).

The trivial ambiguities of these data (global phase, circular translation on the padded
grid, conjugate inversion ``x(r) -> conj(x(-r))``) are handled by
:mod:`diffinv.operators.phase_retrieval.metrics`.
"""

from __future__ import annotations

import torch

from ..base import LinearOperator
from ._common import IntensityOperator, as_complex, check_image, fft2c, ifft2c

__all__ = ["FourierPhaseRetrieval", "OversampledFourier", "pad_widths", "size2"]


def size2(image_size: int | tuple[int, int], name: str = "image_size") -> tuple[int, int]:
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        h, w = (int(s) for s in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an int or a pair (H, W), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name}: expected positive sizes, got {image_size!r}")
    return h, w


def pad_widths(size: int, padded: int) -> tuple[int, int]:
    """Zeros before and after an object of ``size`` pixels centred in ``padded`` pixels."""
    before = (padded - size) // 2
    return before, padded - size - before


class OversampledFourier(LinearOperator):
    r"""``B x = F_c P x``: zero padding to ``(M_h, M_w)`` then the centred orthonormal DFT.

    Input ``(batch, C, H, W)`` real or complex; output ``(batch, C, M_h, M_w)`` complex.
    The adjoint ``B^H u = P^T F_c^{-1} u`` crops the inverse DFT back to ``H x W`` (complex;
    for real objects the adjoint of the real-restricted map is its real part).

    Parameters
    ----------
    image_size : (H, W)
    padded_size : (M_h, M_w)
        Must be at least the image size.
    channels : int
    """

    def __init__(
        self, image_size: tuple[int, int], padded_size: tuple[int, int], channels: int = 1
    ):
        (h, w), (mh, mw) = size2(image_size), size2(padded_size, "padded_size")
        if mh < h or mw < w:
            raise ValueError(
                f"padded_size: expected at least the image size {(h, w)}, got {(mh, mw)}"
            )
        self.image_size, self.padded_size = (h, w), (mh, mw)
        self.pad_h, self.pad_w = pad_widths(h, mh), pad_widths(w, mw)
        self.in_shape = (int(channels), h, w)
        self.out_shape = (int(channels), mh, mw)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad ``(..., H, W)`` to ``(..., M_h, M_w)`` (the operator ``P``)."""
        (t, b), (lft, r) = self.pad_h, self.pad_w
        return torch.nn.functional.pad(x, (lft, r, t, b))

    def crop(self, z: torch.Tensor) -> torch.Tensor:
        """Cut the object window out of a padded grid (the operator ``P^T``)."""
        (t, _), (lft, _) = self.pad_h, self.pad_w
        h, w = self.image_size
        return z[..., t:t + h, lft:lft + w]

    def support(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Boolean ``(M_h, M_w)`` mask of the object window on the padded grid."""
        mask = torch.zeros(self.padded_size, dtype=torch.bool, device=device)
        (t, _), (lft, _) = self.pad_h, self.pad_w
        h, w = self.image_size
        mask[t:t + h, lft:lft + w] = True
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("x", x, self.in_shape)
        return fft2c(self.pad(as_complex(x)))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        check_image("y", y, self.out_shape)
        return self.crop(ifft2c(as_complex(y)))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``B^H B = I`` (the padded DFT is an isometry)."""
        return as_complex(x)


class FourierPhaseRetrieval(IntensityOperator):
    r"""Oversampled Fourier intensities ``y = |F_c P x|^2`` (see the module docstring).

    Parameters
    ----------
    image_size : int or (H, W)
        Object size in pixels.
    oversampling : float
        Padded linear size over object linear size, ``M = round(oversampling * H)``;
        default 2.0 (``M = 2H``).  Must be >= 1.  Ignored when ``padding`` is given.
    padding : int, optional
        Zeros added on *each* side (``M = H + 2 padding``); the DPS/DAPS convention is
        ``padding = int(oversample / 8 * H)``, see :meth:`dps_convention`.
    channels : int
        Number of independent channels ``C`` of the object.
    measure : {"intensity", "amplitude"}
        Return ``|B x|^2`` (photon intensities, default) or ``|B x|``.

    Shapes
    ------
    ``x``: ``(batch, C, H, W)`` real or complex; ``op(x)``: ``(batch, C, M_h, M_w)`` real.
    """

    def __init__(
        self,
        image_size: int | tuple[int, int],
        oversampling: float = 2.0,
        *,
        padding: int | None = None,
        channels: int = 1,
        measure: str = "intensity",
    ):
        h, w = size2(image_size)
        if padding is not None:
            if int(padding) != padding or padding < 0:
                raise ValueError(f"padding: expected a non-negative integer, got {padding!r}")
            mh, mw = h + 2 * int(padding), w + 2 * int(padding)
        else:
            if not (float(oversampling) >= 1.0):
                raise ValueError(f"oversampling: expected a number >= 1, got {oversampling!r}")
            mh, mw = round(oversampling * h), round(oversampling * w)
        if int(channels) < 1:
            raise ValueError(f"channels: expected a positive integer, got {channels!r}")
        super().__init__(OversampledFourier((h, w), (mh, mw), int(channels)), measure)
        self.oversampling = mh / h

    @classmethod
    def dps_convention(
        cls, image_size: int | tuple[int, int], oversample: float = 2.0, **kwargs
    ) -> FourierPhaseRetrieval:
        """The padding of the DPS/DAPS reference code: ``int(oversample / 8 * H)`` per side.

        With the code's default ``oversample=2.0`` the padded grid is ``1.5 H`` wide.  Pass
        ``measure="amplitude"`` to also match their amplitude measurements.
        """
        h, _ = size2(image_size)
        return cls(image_size, padding=int(oversample / 8.0 * h), **kwargs)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.linear.image_size

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.linear.padded_size

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad an object to the measurement grid."""
        return self.linear.pad(x)

    def crop(self, z: torch.Tensor) -> torch.Tensor:
        """Cut the object window out of a padded-grid object."""
        return self.linear.crop(z)

    def support(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Boolean ``(M_h, M_w)`` mask of the object window (the known support)."""
        return self.linear.support(device)
