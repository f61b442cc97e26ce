r"""Observations: sampled (u, v) points with visibilities, sigmas and scan grouping.

Conventions (those of the EHT UVFITS releases, checked against their files in the tests):

* the baseline of a visibility ``V_ij`` (stations ``i < j``) is ``r_i - r_j`` (ECEF, m);
  its coordinates are

  .. math::
      u &= \sin H\, b_x + \cos H\, b_y \\
      v &= -\sin\delta \cos H\, b_x + \sin\delta \sin H\, b_y + \cos\delta\, b_z

  in wavelengths after division by :math:`\lambda = c/\nu`, with ``H`` the Greenwich hour
  angle of the source (Greenwich apparent sidereal time minus right ascension) and
  ``delta`` its declination (Thompson, Moran & Swenson, *Interferometry and Synthesis in
  Radio Astronomy*, 3rd ed., eq. 4.1);
* ``V_ji = conj(V_ij)`` at ``(-u, -v)``: an :class:`Observation` stores every baseline once
  with ``t1 < t2`` (conjugating and negating the rest when built);
* ``sigma`` is the standard deviation of the real part and of the imaginary part of a
  visibility, in Jy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ...extras import require
from ..noise import check_finite
from .arrays import Array
from .noise import thermal_sigma

__all__ = ["Observation", "SPEED_OF_LIGHT", "uv_from_baselines", "greenwich_sidereal_angle"]

SPEED_OF_LIGHT = 299_792_458.0  # m / s


def _t(x, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype).clone()


@dataclass
class Observation:
    """Visibility data of one source at one frequency.

    Attributes
    ----------
    stations : tuple of str
        Station codes; ``t1``/``t2`` index into it.
    sefds : numpy.ndarray
        ``(S,)`` SEFDs in Jy (NaN when unknown).
    time : torch.Tensor
        ``(M,)`` float64, hours (UTC) since 0h of day ``mjd``.
    t1, t2 : torch.Tensor
        ``(M,)`` int64 station indices with ``t1 < t2``.
    u, v : torch.Tensor
        ``(M,)`` float64 baseline coordinates in wavelengths.
    vis : torch.Tensor
        ``(M,)`` complex128 visibilities in Jy.
    sigma : torch.Tensor
        ``(M,)`` float64 thermal sigma of the real and of the imaginary part, Jy.
    scan : torch.Tensor
        ``(M,)`` int64 scan index (non-decreasing in time).
    tint : torch.Tensor
        ``(M,)`` float64 integration time of each record, s.
    ra_deg, dec_deg : float
        Source position (J2000), degrees.
    mjd : int
        Modified Julian Date of the observing day.
    frequency_hz, bandwidth_hz : float
        Observing frequency and bandwidth, Hz.
    source : str
        Source name.
    """

    stations: tuple[str, ...]
    sefds: np.ndarray
    time: torch.Tensor
    t1: torch.Tensor
    t2: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    vis: torch.Tensor
    sigma: torch.Tensor
    scan: torch.Tensor
    tint: torch.Tensor
    ra_deg: float
    dec_deg: float
    mjd: int
    frequency_hz: float
    bandwidth_hz: float
    source: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = int(self.time.shape[0])
        for name in ("t1", "t2", "u", "v", "vis", "sigma", "scan", "tint"):
            val = getattr(self, name)
            if not isinstance(val, torch.Tensor) or tuple(val.shape) != (m,):
                raise ValueError(f"{name}: expected a tensor of shape ({m},)")
        if bool((self.t1 == self.t2).any()):
            raise ValueError("t1, t2: autocorrelations (t1 == t2) are not visibilities")
        n = len(self.stations)
        if m and (int(self.t1.max()) >= n or int(self.t2.max()) >= n or int(self.t1.min()) < 0):
            raise ValueError(f"t1, t2: station indices must lie in [0, {n})")
        self.sefds = np.asarray(self.sefds, dtype=np.float64)
        # canonical orientation t1 < t2: V_ji = conj(V_ij) at (-u, -v)
        swap = self.t1 > self.t2
        if bool(swap.any()):
            t1 = torch.where(swap, self.t2, self.t1)
            t2 = torch.where(swap, self.t1, self.t2)
            self.t1, self.t2 = t1, t2
            self.u = torch.where(swap, -self.u, self.u)
            self.v = torch.where(swap, -self.v, self.v)
            self.vis = torch.where(swap, self.vis.conj(), self.vis)

    # -- basic views ------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def n_vis(self) -> int:
        """Number of visibilities ``M``."""
        return len(self)

    @property
    def wavelength_m(self) -> float:
        """Observing wavelength in metres."""
        return SPEED_OF_LIGHT / self.frequency_hz

    @property
    def uv(self) -> torch.Tensor:
        """``(M, 2)`` float64 (u, v) in wavelengths."""
        return torch.stack([self.u, self.v], dim=1)

    def baseline_names(self) -> list[str]:
        """``"AA-AP"``-style names of each visibility's baseline."""
        return [
            f"{self.stations[i]}-{self.stations[j]}"
            for i, j in zip(self.t1.tolist(), self.t2.tolist())
        ]

    def present_stations(self) -> list[str]:
        """Codes of stations that appear in at least one visibility."""
        idx = sorted(set(self.t1.tolist()) | set(self.t2.tolist()))
        return [self.stations[i] for i in idx]

    def time_groups(self) -> list[torch.Tensor]:
        """Index tensors of the visibilities sharing one timestamp, in time order."""
        _, inverse = torch.unique(self.time, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        counts = torch.bincount(inverse)
        return list(torch.split(order, counts.tolist()))

    # -- new observations -------------------------------------------------------------
    def select(self, mask: torch.Tensor) -> Observation:
        """A new observation keeping the visibilities where ``mask`` (bool ``(M,)``) is True."""
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if tuple(mask.shape) != (len(self),):
            raise ValueError(f"mask: expected a boolean tensor of shape ({len(self)},)")
        kw = {
            n: getattr(self, n)[mask]
            for n in ("time", "t1", "t2", "u", "v", "vis", "sigma", "scan", "tint")
        }
        return replace(self, **kw)

    def with_data(self, vis: torch.Tensor, sigma: torch.Tensor | None = None) -> Observation:
        """A copy with new visibilities (and optionally sigmas); inputs are not modified.

        ``vis`` may have a leading batch dimension of 1 (as returned by an operator).
        """
        vis = torch.as_tensor(vis).detach().reshape(-1).to("cpu", torch.complex128)
        if tuple(vis.shape) != (len(self),):
            raise ValueError(f"vis: expected {len(self)} visibilities, got {tuple(vis.shape)}")
        check_finite("vis", vis)
        new_sigma = (
            self.sigma
            if sigma is None
            else torch.as_tensor(sigma).reshape(-1).to("cpu", torch.float64)
        )
        if tuple(new_sigma.shape) != (len(self),) or bool((new_sigma <= 0).any()):
            raise ValueError(f"sigma: expected {len(self)} positive sigmas in Jy")
        return replace(self, vis=vis.clone(), sigma=new_sigma.clone())

    def with_systematic_noise(self, fraction: float) -> Observation:
        """A copy with sigmas ``sqrt(sigma^2 + (fraction |V|)^2)`` (non-closing errors).

        Imaging pipelines add such a budget (about 1 % for the EHT 2017 data, Paper IV) to
        account for errors beyond the thermal noise.
        """
        if not (fraction >= 0 and math.isfinite(fraction)):
            raise ValueError(f"fraction: expected a non-negative number, got {fraction!r}")
        sigma = torch.sqrt(self.sigma**2 + (fraction * self.vis.abs()) ** 2)
        return replace(self, sigma=sigma)

    def flag(self) -> Observation:
        """Drop visibilities with non-positive or non-finite sigma, or non-finite values."""
        ok = torch.isfinite(self.sigma) & (self.sigma > 0) & torch.isfinite(self.vis.real)
        ok &= torch.isfinite(self.vis.imag) & torch.isfinite(self.u) & torch.isfinite(self.v)
        return self.select(ok)

    def flag_stations(self, codes: list[str]) -> Observation:
        """Drop every visibility involving one of the stations ``codes``."""
        bad = [self.stations.index(c) for c in codes if c in self.stations]
        keep = torch.ones(len(self), dtype=torch.bool)
        for b in bad:
            keep &= (self.t1 != b) & (self.t2 != b)
        return self.select(keep)

    def with_scans(self, gap_s: float = 60.0) -> Observation:
        """Regroup into scans: a new scan starts after a gap in time longer than ``gap_s``."""
        if not gap_s > 0:
            raise ValueError(f"gap_s: expected a positive gap in seconds, got {gap_s!r}")
        times = torch.unique(self.time)
        new = torch.cat([torch.ones(1, dtype=torch.bool), torch.diff(times) * 3600.0 > gap_s])
        scan_of_time = torch.cumsum(new.long(), 0) - 1
        idx = torch.searchsorted(times, self.time)
        return replace(self, scan=scan_of_time[idx])

    def average_scans(self) -> Observation:
        """Coherently average each baseline over each scan with inverse-variance weights.

        The averaged visibility is ``sum w V / sum w`` with ``w = 1 / sigma^2`` and sigma
        ``1 / sqrt(sum w)``; time and (u, v) are the weighted means, ``tint`` the sum.
        """
        if len(self) == 0:
            return self
        key = (self.scan * len(self.stations) + self.t1) * len(self.stations) + self.t2
        uniq, inv = torch.unique(key, return_inverse=True)
        k = uniq.shape[0]
        w = 1.0 / self.sigma**2
        wsum = torch.zeros(k, dtype=torch.float64).index_add_(0, inv, w)

        def wmean(x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(k, dtype=x.dtype).index_add_(0, inv, x * w.to(x.dtype))
            return out / wsum.to(x.dtype)

        first = torch.zeros(k, dtype=torch.long).scatter_(0, inv, torch.arange(len(self)))
        # all records of one scan get one common time (the scan's weighted mean time)
        scan_w = torch.zeros(int(self.scan.max()) + 1, dtype=torch.float64)
        scan_t = scan_w.clone().index_add_(0, self.scan, self.time * w)
        scan_w.index_add_(0, self.scan, w)
        scan_time = scan_t / scan_w
        out = replace(
            self,
            time=scan_time[self.scan[first]],
            t1=self.t1[first],
            t2=self.t2[first],
            u=wmean(self.u),
            v=wmean(self.v),
            vis=wmean(self.vis),
            sigma=1.0 / torch.sqrt(wsum),
            scan=self.scan[first],
            tint=torch.zeros(k, dtype=torch.float64).index_add_(0, inv, self.tint),
        )
        order = torch.as_tensor(np.lexsort((out.t2.numpy(), out.t1.numpy(), out.time.numpy())))
        return out._reorder(order)

    def _reorder(self, order: torch.Tensor) -> Observation:
        kw = {
            n: getattr(self, n)[order]
            for n in ("time", "t1", "t2", "u", "v", "vis", "sigma", "scan", "tint")
        }
        return replace(self, **kw)

    def with_conjugates(self) -> Observation:
        """The observation with every ``V_ji = conj(V_ij)`` at ``(-u, -v)`` appended.

        Meant for plotting (u, v) coverage; operators use the canonical half.  The result
        keeps ``t1 > t2`` for the appended half.
        """
        obs = replace(self)
        for name in ("time", "sigma", "scan", "tint"):
            setattr(obs, name, torch.cat([getattr(self, name)] * 2))
        obs.t1 = torch.cat([self.t1, self.t2])
        obs.t2 = torch.cat([self.t2, self.t1])
        obs.u = torch.cat([self.u, -self.u])
        obs.v = torch.cat([self.v, -self.v])
        obs.vis = torch.cat([self.vis, self.vis.conj()])
        return obs

    def __repr__(self) -> str:
        n_scans = int(torch.unique(self.scan).numel()) if len(self) else 0
        return (
            f"Observation({self.source or 'source'}, {len(self)} visibilities, {n_scans} scans, "
            f"stations={self.present_stations()}, {self.frequency_hz / 1e9:.1f} GHz)"
        )

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def simulate(
        cls,
        array: Array,
        ra: float,
        dec: float,
        date: str,
        *,
        start_hr: float = 0.0,
        stop_hr: float = 24.0,
        integration_s: float = 10.0,
        scan_interval_s: float = 600.0,
        scan_duration_s: float | None = None,
        elevation_limits_deg: tuple[float, float] = (10.0, 90.0),
        frequency_hz: float = 230e9,
        bandwidth_hz: float = 2e9,
        efficiency: float = 0.88,
        source: str = "",
    ) -> Observation:
        """Simulate the (u, v) sampling of an observation by Earth-rotation synthesis.

        Scans start every ``scan_interval_s`` seconds from ``start_hr`` (UTC) and last
        ``scan_duration_s`` (default one integration), split into records of
        ``integration_s`` seconds.  A baseline is recorded when the source is within
        ``elevation_limits_deg`` at both stations (geodetic WGS84 elevation, no refraction).
        Visibilities are zero; sigmas are the thermal noise of :func:`.noise.thermal_sigma`.

        Parameters
        ----------
        array : Array
            Stations with ECEF positions (m) and SEFDs (Jy).
        ra, dec : float
            Source right ascension and declination (J2000), degrees.
        date : str
            Observing day, ``"YYYY-MM-DD"`` (UTC).
        start_hr, stop_hr : float
            Observing window in hours UTC of ``date`` (``stop_hr`` may exceed 24).
        integration_s, scan_interval_s, scan_duration_s : float
            Record length, scan cadence and scan length in seconds.
        elevation_limits_deg : (float, float)
            Minimum and maximum elevation, degrees.
        frequency_hz, bandwidth_hz : float
            Observing frequency and recorded bandwidth, Hz.
        efficiency : float
            Quantisation efficiency in the thermal noise (0.88 for 2-bit sampling).
        source : str
            Source name stored in the observation.
        """
        Time = require("astropy.time", purpose="observation times").Time

        if not isinstance(array, Array):
            raise ValueError("array: expected an Array (e.g. Array.eht2017())")
        if not (-90.0 <= dec <= 90.0) or not math.isfinite(ra):
            raise ValueError(f"ra, dec: expected degrees with |dec| <= 90, got ({ra}, {dec})")
        for name, val in (
            ("integration_s", integration_s),
            ("scan_interval_s", scan_interval_s),
            ("frequency_hz", frequency_hz),
            ("bandwidth_hz", bandwidth_hz),
        ):
            if not (val > 0 and math.isfinite(val)):
                raise ValueError(f"{name}: expected a positive number, got {val!r}")
        if not stop_hr > start_hr:
            raise ValueError(f"stop_hr: expected > start_hr ({start_hr}), got {stop_hr}")
        duration = integration_s if scan_duration_s is None else float(scan_duration_s)
        if not duration >= integration_s:
            raise ValueError("scan_duration_s: expected at least one integration_s")
        try:
            day = Time(date, scale="utc")
        except ValueError as err:
            raise ValueError(f"date: expected 'YYYY-MM-DD', got {date!r} ({err})") from None
        mjd = int(math.floor(day.mjd))
        scan_starts = np.arange(start_hr * 3600.0, stop_hr * 3600.0, scan_interval_s)
        n_rec = max(int(round(duration / integration_s)), 1)
        offsets = (np.arange(n_rec) + 0.5) * integration_s
        t_sec = (scan_starts[:, None] + offsets[None, :]).reshape(-1)
        scan_of = np.repeat(np.arange(len(scan_starts)), n_rec)
        keep = t_sec < stop_hr * 3600.0
        t_sec, scan_of = t_sec[keep], scan_of[keep]
        times = Time(mjd, t_sec / 86400.0, format="mjd", scale="utc")
        gst = greenwich_sidereal_angle(times)
        ha = gst - math.radians(ra)  # Greenwich hour angle (rad), (T,)
        d = math.radians(dec)
        # source direction in ECEF at each time: longitude -H, latitude dec
        s = np.stack(
            [np.cos(d) * np.cos(-ha), np.cos(d) * np.sin(-ha), np.full_like(ha, np.sin(d))], 1
        )
        lat, lon = array.geodetic()
        up = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], 1)
        elev = np.degrees(np.arcsin(np.clip(s @ up.T, -1.0, 1.0)))  # (T, S)
        emin, emax = elevation_limits_deg
        visible = (elev >= emin) & (elev <= emax)
        n = len(array)
        i1, i2 = np.triu_indices(n, 1)
        ok = visible[:, i1] & visible[:, i2]  # (T, B)
        ti, bi = np.nonzero(ok)
        b = array.positions[i1[bi]] - array.positions[i2[bi]]
        u, v = uv_from_baselines(b, ha[ti], d, frequency_hz)
        sig = thermal_sigma(
            array.sefds[i1[bi]], array.sefds[i2[bi]], bandwidth_hz, integration_s, efficiency
        )
        if not np.isfinite(sig).all():
            raise ValueError("array: every station needs a finite SEFD (Jy) to simulate noise")
        scan_ids = np.unique(scan_of[ti], return_inverse=True)[1]
        return cls(
            stations=array.codes,
            sefds=array.sefds,
            time=_t(t_sec[ti] / 3600.0, torch.float64),
            t1=_t(i1[bi], torch.long),
            t2=_t(i2[bi], torch.long),
            u=_t(u, torch.float64),
            v=_t(v, torch.float64),
            vis=torch.zeros(len(ti), dtype=torch.complex128),
            sigma=_t(sig, torch.float64),
            scan=_t(scan_ids, torch.long),
            tint=torch.full((len(ti),), float(integration_s), dtype=torch.float64),
            ra_deg=float(ra),
            dec_deg=float(dec),
            mjd=mjd,
            frequency_hz=float(frequency_hz),
            bandwidth_hz=float(bandwidth_hz),
            source=source,
            metadata={
                "efficiency": efficiency,
                "elevation_limits_deg": tuple(elevation_limits_deg),
            },
        )

    @classmethod
    def from_uvfits(cls, path, **kw) -> Observation:
        """Read a random-groups UVFITS file; see :func:`.uvfits.read_uvfits`."""
        from .uvfits import read_uvfits

        return read_uvfits(path, **kw)


def greenwich_sidereal_angle(times) -> np.ndarray:
    """Greenwich apparent sidereal time (radians) of astropy ``times``.

    Uses astropy with its bundled Earth-orientation tables (never downloads); for dates
    outside those tables falls back to the IAU 2006 GST with UT1 = UTC (error below ~1 s of
    time, i.e. a rotation of ~15 arcsec, negligible for (u, v) coverage).
    """
    erfa = require("erfa", "vlbi", "Earth rotation")
    iers = require("astropy.utils.iers", purpose="Earth rotation")

    try:
        with iers.conf.set_temp("auto_download", False):
            return np.asarray(times.sidereal_time("apparent", "greenwich").rad, dtype=np.float64)
    except Exception:  # IERS range errors differ between astropy versions
        tt = times.tt
        return np.asarray(erfa.gst06a(times.jd1, times.jd2, tt.jd1, tt.jd2), dtype=np.float64)


def uv_from_baselines(
    baselines_m: np.ndarray, hour_angle_rad: np.ndarray, dec_rad: float, frequency_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) in wavelengths of ECEF baselines (m, ``(K, 3)``) at Greenwich hour angles.

    Implements the module's equation (Thompson, Moran & Swenson eq. 4.1).
    """
    b = np.asarray(baselines_m, dtype=np.float64)
    h = np.asarray(hour_angle_rad, dtype=np.float64)
    lam = SPEED_OF_LIGHT / frequency_hz
    u = (np.sin(h) * b[:, 0] + np.cos(h) * b[:, 1]) / lam
    v = (
        -np.sin(dec_rad) * np.cos(h) * b[:, 0]
        + np.sin(dec_rad) * np.sin(h) * b[:, 1]
        + np.cos(dec_rad) * b[:, 2]
    ) / lam
    return u, v
