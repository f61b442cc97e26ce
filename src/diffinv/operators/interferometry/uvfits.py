"""Read random-groups UVFITS files (as released by the EHT) into an :class:`Observation`.

Layout handled (AIPS memo 117): a primary ``GroupsHDU`` whose groups carry the random
parameters ``UU``, ``VV`` (light seconds at the reference frequency), ``BASELINE``
(``256 * a1 + a2`` with 1-based antenna numbers), ``DATE`` (Julian date, possibly split
over two parameters) and ``INTTIM``; data axes ``(..., IF, ..., STOKES, COMPLEX)`` with
``COMPLEX = (re, im, weight)`` and ``weight = 1 / sigma^2``; an ``AIPS AN`` table with
``ANNAME``, ``NOSTA`` and ``STABXYZ``; optionally ``AIPS FQ`` with the IF bandwidths.

Stokes I is formed as ``(RR + LL) / 2`` where both hands are valid (sigma
``sqrt(s_RR^2 + s_LL^2) / 2``) and from the valid hand alone otherwise; a Stokes-I file
(``CRVAL`` of the STOKES axis equal to 1) is read directly.  IFs are averaged with
inverse-variance weights.  Records with zero, negative or non-finite weights are flagged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...extras import require
from ...io import reader
from .arrays import Array
from .observation import SPEED_OF_LIGHT, Observation

__all__ = ["read_uvfits"]


def _axis(header, name: str) -> int | None:
    """Index of axis ``name`` in the numpy data array (groups axis 0 excluded)."""
    naxis = int(header["NAXIS"])
    for k in range(2, naxis + 1):
        if str(header.get(f"CTYPE{k}", "")).strip().upper() == name:
            return naxis - k  # numpy order reverses FITS axes; FITS axis 1 is empty
    return None


@reader("UVFITS")
def read_uvfits(
    path: str | Path, scan_gap_s: float = 60.0, known_array: Array | None = None
) -> Observation:
    """Read a random-groups UVFITS file.

    Parameters
    ----------
    path : str or Path
        The ``.uvfits`` file.
    scan_gap_s : float
        A new scan starts after a gap in time longer than this (seconds).
    known_array : Array, optional
        Table used to fill in SEFDs by station code when the file has none; default
        :meth:`Array.eht2018`.

    Returns
    -------
    Observation
        Canonical orientation (``t1 < t2``), flagged, grouped into scans.
    """
    fits = require("astropy.io.fits", purpose="reading UVFITS files")

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: UVFITS file {str(path)!r} does not exist")
    with fits.open(path, memmap=False) as hdul:
        prim = hdul[0]
        if not isinstance(prim, fits.GroupsHDU):
            raise ValueError(f"path: {str(path)!r} is not a random-groups UVFITS file")
        hdr = prim.header
        data = prim.data
        names = [p.upper() for p in data.parnames]

        def par(prefix: str) -> np.ndarray:
            idx = [i for i, p in enumerate(names) if p.startswith(prefix)]
            if not idx:
                raise ValueError(f"path: random parameter {prefix!r} missing in {str(path)!r}")
            # float64 before summing split dates: float32 JDs lose the time of day
            return sum(np.asarray(data.par(i), dtype=np.float64) for i in idx)

        freq = float(hdr["CRVAL" + str(_fits_axis_number(hdr, "FREQ"))])
        u = par("UU") * freq
        v = par("VV") * freq
        bl = par("BASELINE").astype(np.int64)
        jd = par("DATE")
        tint = (
            par("INTTIM")
            if any(p.startswith("INTTIM") for p in names)
            else np.full(len(bl), np.nan)
        )
        raw = np.asarray(data.data, dtype=np.float64)
        vis, sigma = _stokes_i(raw, hdr)
        an = hdul["AIPS AN"].data
        codes = [str(c).strip() for c in an["ANNAME"]]
        nosta = [int(n) for n in an["NOSTA"]]
        bw = _bandwidth(hdul, hdr)
        ra = float(hdr.get("OBSRA", hdr.get("CRVAL" + str(_fits_axis_number(hdr, "RA")), np.nan)))
        dec = float(
            hdr.get("OBSDEC", hdr.get("CRVAL" + str(_fits_axis_number(hdr, "DEC")), np.nan))
        )
        source = str(hdr.get("OBJECT", "")).strip()
    a1, a2 = bl // 256, bl % 256
    lookup = {n: k for k, n in enumerate(nosta)}
    try:
        t1 = np.array([lookup[a] for a in a1])
        t2 = np.array([lookup[a] for a in a2])
    except KeyError as err:
        raise ValueError(
            f"path: baseline refers to antenna {err} absent from the AN table"
        ) from None
    mjd_full = jd - 2400000.5
    mjd = int(np.floor(mjd_full.min()))
    hours = (mjd_full - mjd) * 24.0
    table = known_array if known_array is not None else Array.eht2018()
    sefds = np.array(
        [table.sefds[table.codes.index(c)] if c in table.codes else np.nan for c in codes]
    )
    sefds = np.where(np.isin(codes, ["SR"]), np.nan, sefds)
    obs = Observation(
        stations=tuple(codes),
        sefds=sefds,
        time=torch.as_tensor(hours, dtype=torch.float64),
        t1=torch.as_tensor(t1, dtype=torch.long),
        t2=torch.as_tensor(t2, dtype=torch.long),
        u=torch.as_tensor(u, dtype=torch.float64),
        v=torch.as_tensor(v, dtype=torch.float64),
        vis=torch.as_tensor(np.nan_to_num(vis), dtype=torch.complex128),
        sigma=torch.as_tensor(sigma, dtype=torch.float64),
        scan=torch.zeros(len(bl), dtype=torch.long),
        tint=torch.as_tensor(np.nan_to_num(tint, nan=0.0), dtype=torch.float64),
        ra_deg=ra,
        dec_deg=dec,
        mjd=mjd,
        frequency_hz=freq,
        bandwidth_hz=bw,
        source=source,
        metadata={"path": str(path), "wavelength_m": SPEED_OF_LIGHT / freq},
    )
    auto = obs.t1 == obs.t2
    if bool(auto.any()):
        raise ValueError("path: autocorrelations are not supported; remove them first")
    return obs.flag().with_scans(scan_gap_s)


def _fits_axis_number(hdr, name: str) -> int:
    for k in range(2, int(hdr["NAXIS"]) + 1):
        if str(hdr.get(f"CTYPE{k}", "")).strip().upper() == name:
            return k
    raise ValueError(f"path: UVFITS header lacks a {name} axis")


def _bandwidth(hdul, hdr) -> float:
    try:
        fq = hdul["AIPS FQ"].data
        col = [c for c in fq.columns.names if c.upper().startswith("TOTAL")][0]
        return float(np.sum(np.asarray(fq[col], dtype=np.float64)))
    except (KeyError, IndexError):
        return abs(float(hdr["CDELT" + str(_fits_axis_number(hdr, "FREQ"))]))


def _stokes_i(raw: np.ndarray, hdr) -> tuple[np.ndarray, np.ndarray]:
    """Stokes I visibilities and sigmas ``(G,)`` from the data array ``(G, ..., 3)``."""
    ax_s = _axis(hdr, "STOKES")
    if ax_s is None:
        raise ValueError("path: UVFITS data lack a STOKES axis")
    k_s = _fits_axis_number(hdr, "STOKES")
    s0 = float(hdr[f"CRVAL{k_s}"])
    ds = float(hdr.get(f"CDELT{k_s}", 1.0))
    p0 = float(hdr.get(f"CRPIX{k_s}", 1.0))
    codes = [int(round(s0 + (i + 1 - p0) * ds)) for i in range(raw.shape[ax_s + 1])]
    # stokes next to the complex axis; every other axis (IF, FREQ, RA, DEC) becomes one
    # channel axis averaged below
    arr = np.moveaxis(raw, ax_s + 1, -2)
    arr = arr.reshape(arr.shape[0], -1, arr.shape[-2], 3)  # (G, channels, stokes, 3)
    re, im, w = arr[..., 0], arr[..., 1], arr[..., 2]
    valid = np.isfinite(w) & (w > 0) & np.isfinite(re) & np.isfinite(im)
    var = np.where(valid, 1.0 / np.where(valid, w, 1.0), np.inf)
    z = np.where(valid, re + 1j * im, 0.0)
    if 1 in codes:
        k = codes.index(1)
        zi, vi = z[..., k], var[..., k]
    elif -1 in codes and -2 in codes:
        kr, kl = codes.index(-1), codes.index(-2)
        vr, vl = valid[..., kr], valid[..., kl]
        both = vr & vl
        zi = np.where(both, 0.5 * (z[..., kr] + z[..., kl]), np.where(vr, z[..., kr], z[..., kl]))
        vi = np.where(
            both, 0.25 * (var[..., kr] + var[..., kl]), np.where(vr, var[..., kr], var[..., kl])
        )
    else:
        raise ValueError(f"path: need Stokes I or RR and LL, found Stokes codes {codes}")
    # inverse-variance average over IFs
    wi = np.where(np.isfinite(vi), 1.0 / vi, 0.0)
    wsum = wi.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vis = (wi * zi).sum(axis=1) / wsum
        sigma = np.where(wsum > 0, 1.0 / np.sqrt(wsum), np.inf)
    return vis, sigma
