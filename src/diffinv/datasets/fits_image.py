"""FITS images of the sky with a correct celestial WCS (astropy), written atomically.

In-memory images follow the interferometry convention: ``(N, N)`` (or ``(K, N, N)`` for a
stack such as posterior samples) in Jy per pixel, row 0 north (top), column 0 east (left).
On disk the FITS convention holds: the first axis (``NAXIS1``, columns) is RA with
``CDELT1 < 0`` (RA grows to the left), the second (``NAXIS2``) is Dec with ``CDELT2 > 0``
and row 1 at the south, both in the ``SIN`` projection centred on the source; so the array
is flipped up-down when written and flipped back when read.  ``BUNIT = 'JY/PIXEL'``.
The reference pixel is the image centre, ``CRPIX = N/2 + 0.5`` (1-based), matching
:func:`diffinv.operators.interferometry.visibilities.pixel_coordinates`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..extras import require
from ..io import atomic_write, reader

__all__ = ["FitsImage", "write_fits_image", "read_fits_image", "write_posterior_fits"]

_UAS_PER_DEG = 3600.0 * 1e6


@dataclass
class FitsImage:
    """An image read from FITS.

    Attributes
    ----------
    image : torch.Tensor
        ``(N, N)`` or ``(K, N, N)`` float64, Jy per pixel, north up and east left.
    fov_uas : float
        Field of view (image side), micro-arcseconds.
    ra_deg, dec_deg : float
        Image centre.
    frequency_hz : float or None
    mjd : float or None
    source : str
    header : dict
        Remaining header cards.
    """

    image: torch.Tensor
    fov_uas: float
    ra_deg: float
    dec_deg: float
    frequency_hz: float | None = None
    mjd: float | None = None
    source: str = ""
    header: dict = field(default_factory=dict)


def write_fits_image(
    path: str | Path,
    image: torch.Tensor,
    fov_uas: float,
    ra_deg: float = 0.0,
    dec_deg: float = 0.0,
    frequency_hz: float | None = None,
    mjd: float | None = None,
    source: str = "",
    extra: dict | None = None,
) -> Path:
    """Write an image (or a stack of images) in Jy per pixel to a FITS file, atomically.

    Parameters
    ----------
    path : str or Path
        Output file; its directory must exist.
    image : torch.Tensor
        ``(N, N)``, ``(1, N, N)``, ``(1, 1, N, N)`` or ``(K, 1, N, N)`` / ``(K, N, N)``
        real image(s), Jy per pixel, north up and east left.  Not modified.
    fov_uas : float
        Field of view (side), micro-arcseconds.
    ra_deg, dec_deg : float
        Sky position of the image centre, degrees.
    frequency_hz, mjd : float, optional
        Observing frequency and date, stored as ``FREQ`` / ``MJD-OBS``.
    source : str
        ``OBJECT`` card.
    extra : dict, optional
        Additional header cards (keys of up to 8 characters).

    Returns
    -------
    Path
        The written path.
    """
    fits = require("astropy.io.fits", purpose="FITS images")
    WCS = require("astropy.wcs", purpose="FITS images").WCS

    arr = _as_stack(image)
    if not np.isfinite(arr).all():
        raise ValueError("image: contains NaN or Inf")
    if not (fov_uas > 0 and math.isfinite(fov_uas)):
        raise ValueError(f"fov_uas: expected a positive field of view, got {fov_uas!r}")
    n = arr.shape[-1]
    psize_deg = fov_uas / n / _UAS_PER_DEG
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [float(ra_deg), float(dec_deg)]
    w.wcs.cdelt = [-psize_deg, psize_deg]
    w.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    header = w.to_header()
    header["BUNIT"] = "JY/PIXEL"
    header["OBJECT"] = source
    if frequency_hz is not None:
        header["FREQ"] = (float(frequency_hz), "observing frequency, Hz")
    if mjd is not None:
        header["MJD-OBS"] = float(mjd)
    header["FOV_UAS"] = (float(fov_uas), "field of view, micro-arcseconds")
    for key, value in (extra or {}).items():
        header[str(key)[:8].upper()] = value
    data = arr[:, ::-1, :].copy()  # FITS row 1 = south
    if data.shape[0] == 1:
        data = data[0]
    hdu = fits.PrimaryHDU(data=data.astype(np.float64), header=header)

    def write(tmp: str) -> None:
        hdu.writeto(tmp, overwrite=True)

    return atomic_write(path, write, suffix=".fits")


@reader("FITS image")
def read_fits_image(path: str | Path) -> FitsImage:
    """Read an image written by :func:`write_fits_image` (or by other tools, same WCS).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file lacks a celestial WCS with square pixels, or ``BUNIT`` is not Jy/pixel.
    """
    fits = require("astropy.io.fits", purpose="FITS images")

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: FITS image {str(path)!r} does not exist")
    with fits.open(path) as hdul:
        hdr = hdul[0].header
        data = np.asarray(hdul[0].data, dtype=np.float64)
    if data.ndim == 4:  # (stokes, freq, y, x) from other tools
        data = data.reshape(-1, *data.shape[-2:])
    if data.ndim not in (2, 3) or data.shape[-1] != data.shape[-2]:
        raise ValueError(f"path: expected square images, got data of shape {data.shape}")
    if not str(hdr.get("CTYPE1", "")).startswith("RA") or not str(hdr.get("CTYPE2", "")).startswith(
        "DEC"
    ):
        raise ValueError("path: expected CTYPE1 = RA---* and CTYPE2 = DEC--* axes")
    cd1, cd2 = float(hdr["CDELT1"]), float(hdr["CDELT2"])
    if not math.isclose(abs(cd1), abs(cd2), rel_tol=1e-6):
        raise ValueError(f"path: expected square pixels, got CDELT1={cd1}, CDELT2={cd2}")
    unit = str(hdr.get("BUNIT", "JY/PIXEL")).upper().replace(" ", "")
    if unit not in ("JY/PIXEL", "JY/PIX"):
        raise ValueError(f"path: expected BUNIT = JY/PIXEL, got {unit!r}")
    if cd2 < 0:
        data = data[..., ::-1, :]
    data = data[..., ::-1, :]  # back to north-up rows
    if cd1 > 0:  # RA increasing to the right: flip so east is left
        data = data[..., :, ::-1]
    n = data.shape[-1]
    known = {"FREQ", "MJD-OBS", "OBJECT", "CRVAL1", "CRVAL2"}
    return FitsImage(
        image=torch.as_tensor(data.copy()),
        fov_uas=abs(cd1) * n * _UAS_PER_DEG,
        ra_deg=float(hdr.get("CRVAL1", 0.0)),
        dec_deg=float(hdr.get("CRVAL2", 0.0)),
        frequency_hz=float(hdr["FREQ"]) if "FREQ" in hdr else None,
        mjd=float(hdr["MJD-OBS"]) if "MJD-OBS" in hdr else None,
        source=str(hdr.get("OBJECT", "")),
        header={k: hdr[k] for k in hdr if k and k not in known},
    )


def write_posterior_fits(posterior, directory: str | Path, fov_uas: float, **kw) -> list[Path]:
    """Write a posterior's mean, std and samples as ``mean.fits``, ``std.fits``, ``samples.fits``.

    ``posterior`` has ``mean``, ``std`` and ``samples`` (``(K, 1, N, N)``); ``kw`` goes to
    :func:`write_fits_image`.  HDF5 output is :meth:`Posterior.save`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory: {str(directory)!r} does not exist")
    out = []
    for name in ("mean", "std", "samples"):
        out.append(
            write_fits_image(directory / f"{name}.fits", getattr(posterior, name), fov_uas, **kw)
        )
    return out


def _as_stack(image) -> np.ndarray:
    t = torch.as_tensor(image).detach().to("cpu")
    if t.is_complex():
        raise ValueError("image: expected a real image in Jy per pixel")
    arr = t.to(torch.float64).numpy()
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(
            f"image: expected (N, N), (K, N, N) or (K, 1, N, N) square images, got {tuple(t.shape)}"
        )
    return arr
