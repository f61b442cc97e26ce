"""Telescope arrays: station codes, geocentric positions and SEFDs.

An :class:`Array` is a small table of stations.  Positions are geocentric Earth-centred,
Earth-fixed (ECEF, ITRF-like) coordinates in metres: X toward longitude 0 in the equatorial
plane, Y toward longitude 90 E, Z toward the north pole.  The system equivalent flux density
(SEFD, Jy) sets each station's thermal noise (see :mod:`.noise`).

Built-in arrays are package data files (``data/eht2017.csv``, ``data/eht2018.csv``) whose
numbers are transcribed from the public station table of the eht-imaging project
(``arrays/EHT2017.txt``; GLT from ``arrays/EHT2019.txt``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...extras import require

__all__ = ["Array"]

_DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Array:
    """A VLBI array: station codes, names, ECEF positions (m) and SEFDs (Jy).

    Attributes
    ----------
    codes : tuple of str
        Short station codes (e.g. ``"AA"`` for ALMA), unique.
    names : tuple of str
        Human-readable names.
    positions : numpy.ndarray
        ``(S, 3)`` float64 ECEF positions in metres.
    sefds : numpy.ndarray
        ``(S,)`` float64 SEFDs in Jy (NaN when unknown).
    """

    codes: tuple[str, ...]
    names: tuple[str, ...]
    positions: np.ndarray
    sefds: np.ndarray

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64)
        sefd = np.asarray(self.sefds, dtype=np.float64)
        n = len(self.codes)
        if pos.shape != (n, 3):
            raise ValueError(f"positions: expected shape ({n}, 3) in metres, got {pos.shape}")
        if sefd.shape != (n,):
            raise ValueError(f"sefds: expected shape ({n},) in Jy, got {sefd.shape}")
        if len(self.names) != n:
            raise ValueError(f"names: expected {n} names, got {len(self.names)}")
        if len(set(self.codes)) != n:
            raise ValueError(f"codes: station codes must be unique, got {self.codes}")
        if not np.isfinite(pos).all():
            raise ValueError("positions: contains NaN or Inf")
        if bool((sefd <= 0).any()):
            raise ValueError("sefds: expected positive SEFDs in Jy (NaN for unknown)")
        object.__setattr__(self, "codes", tuple(str(c) for c in self.codes))
        object.__setattr__(self, "names", tuple(str(c) for c in self.names))
        object.__setattr__(self, "positions", pos.copy())
        object.__setattr__(self, "sefds", sefd.copy())

    def __len__(self) -> int:
        return len(self.codes)

    def index(self, code: str) -> int:
        """Index of the station with code (or name) ``code``; ``ValueError`` if absent."""
        if code in self.codes:
            return self.codes.index(code)
        if code in self.names:
            return self.names.index(code)
        raise ValueError(f"code: unknown station {code!r}; expected one of {list(self.codes)}")

    def subset(self, codes: list[str] | tuple[str, ...]) -> Array:
        """The array restricted to the stations ``codes`` (in that order)."""
        idx = [self.index(c) for c in codes]
        return Array(
            tuple(self.codes[i] for i in idx),
            tuple(self.names[i] for i in idx),
            self.positions[idx],
            self.sefds[idx],
        )

    def geodetic(self) -> tuple[np.ndarray, np.ndarray]:
        """Geodetic (WGS84) latitude and longitude of each station in radians."""
        EarthLocation = require("astropy.coordinates", purpose="station geodesy").EarthLocation

        loc = EarthLocation.from_geocentric(*self.positions.T, unit="m")
        lon, lat, _ = loc.to_geodetic("WGS84")
        return np.asarray(lat.rad, dtype=np.float64), np.asarray(lon.rad, dtype=np.float64)

    @classmethod
    def from_table(cls, path: str | Path) -> Array:
        """Read an array from a CSV table.

        The file has a header line ``code,name,x_m,y_m,z_m,sefd_jy`` (``name`` and
        ``sefd_jy`` optional); lines starting with ``#`` are comments.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If a column is missing or a value is not a number.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path: array table {str(path)!r} does not exist")
        with path.open(newline="") as fh:
            lines = [ln for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
        reader = csv.DictReader(lines)
        fields = set(reader.fieldnames or [])
        missing = {"code", "x_m", "y_m", "z_m"} - fields
        if missing:
            raise ValueError(
                f"path: table {str(path)!r} lacks columns {sorted(missing)}; expected "
                "code,name,x_m,y_m,z_m,sefd_jy"
            )
        codes, names, pos, sefd = [], [], [], []
        for row_no, row in enumerate(reader, start=2):
            try:
                pos.append([float(row["x_m"]), float(row["y_m"]), float(row["z_m"])])
                s = row.get("sefd_jy")
                sefd.append(float(s) if s not in (None, "") else float("nan"))
            except (TypeError, ValueError) as err:
                raise ValueError(f"path: bad number in {str(path)!r} row {row_no}: {err}") from None
            codes.append(row["code"].strip())
            names.append((row.get("name") or row["code"]).strip())
        if not codes:
            raise ValueError(f"path: table {str(path)!r} has no stations")
        return cls(tuple(codes), tuple(names), np.array(pos), np.array(sefd))

    @classmethod
    def eht2017(cls) -> Array:
        """The EHT 2017 array (ALMA, APEX, SMT, JCMT, LMT, IRAM 30m, SMA, SPT)."""
        return cls.from_table(_DATA / "eht2017.csv")

    @classmethod
    def eht2018(cls) -> Array:
        """The EHT 2018 array: EHT 2017 plus the Greenland Telescope (GLT)."""
        return cls.from_table(_DATA / "eht2018.csv")

    def __repr__(self) -> str:
        return f"Array({', '.join(self.codes)})"
