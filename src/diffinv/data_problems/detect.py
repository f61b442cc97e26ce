"""Which kind of data a file holds: ``eht`` (UVFITS), ``mri`` (k-space) or ``ct`` (Data Exchange).

Detection reads the file's signature and, for HDF5, its dataset names, never the suffix
alone:

* FITS whose primary HDU is random groups (``GROUPS = T``) -> ``eht``;
* HDF5 with ``/exchange/data`` (Data Exchange, De Carlo et al. 2014) -> ``ct``;
* HDF5 with a ``kspace`` dataset (fastMRI, Zbontar et al. 2018) -> ``mri``;
* BART ``.cfl``/``.hdr`` pairs and complex ``.npy`` arrays -> ``mri``.

Anything else is refused with an error naming the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["KINDS", "detect_kind", "detect_kinds"]

KINDS = ("eht", "mri", "ct")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FITS_MAGIC = b"SIMPLE  ="
_EXPECTED = (
    "expected a UVFITS file (EHT visibilities), a Data Exchange HDF5 file (/exchange/data, "
    "CT projections), a fastMRI HDF5 file (kspace), a BART .cfl/.hdr pair or a complex .npy "
    "k-space array"
)


def _fits_kind(path: Path) -> str:
    head = path.read_bytes()[:2880] if path.stat().st_size >= 80 else b""
    cards = [head[i : i + 80].decode("ascii", "replace") for i in range(0, len(head), 80)]
    for card in cards:
        if card.startswith("GROUPS") and "T" in card.split("=", 1)[-1].split("/")[0]:
            return "eht"
    raise ValueError(
        f"{path}: a FITS file without random groups (an image?), not UVFITS visibilities; "
        + _EXPECTED
    )


def _hdf5_kind(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "exchange/data" in f:
                return "ct"
            if "kspace" in f:
                return "mri"
            names = sorted(f.keys())
    except OSError as err:
        raise ValueError(f"{path}: unreadable HDF5 file (truncated or corrupt: {err})") from None
    raise ValueError(f"{path}: HDF5 file with datasets {names}; {_EXPECTED}")


def detect_kind(path: str | Path) -> str:
    """The data kind of one file (see the module notes).

    Raises
    ------
    FileNotFoundError
        If the file (or, for BART, its ``.cfl``/``.hdr`` pair) is missing.
    ValueError
        Naming the file when its kind cannot be recognised.
    """
    p = Path(path)
    if p.suffix in (".cfl", ".hdr") or (not p.exists() and p.with_suffix(".hdr").exists()):
        for part in (p.with_suffix(".cfl"), p.with_suffix(".hdr")):
            if not part.is_file():
                raise FileNotFoundError(f"{part}: BART file missing (need .cfl and .hdr)")
        return "mri"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file does not exist")
    with p.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(_FITS_MAGIC):
        return _fits_kind(p)
    if head.startswith(_HDF5_MAGIC):
        return _hdf5_kind(p)
    if head.startswith(b"\x93NUMPY"):
        return "mri"
    raise ValueError(f"{p}: unrecognised file format; {_EXPECTED}")


def detect_kinds(paths: list[str | Path], forced: str | None = None) -> str:
    """One kind for several files: forced (checked against ``KINDS``) or detected and equal.

    Several files are only combined for ``eht`` (bands and days of one source).
    """
    if not paths:
        raise ValueError("data: expected at least one file")
    if forced is not None and forced not in KINDS:
        raise ValueError(f"problem: expected one of {KINDS} with --data, got {forced!r}")
    kinds = {str(p): detect_kind(p) for p in paths}
    if forced is not None:
        wrong = [p for p, k in kinds.items() if k != forced]
        if wrong:
            raise ValueError(
                f"{wrong[0]}: holds {kinds[wrong[0]]} data, not {forced} data (--problem {forced})"
            )
        kind = forced
    else:
        found = set(kinds.values())
        if len(found) > 1:
            raise ValueError(f"data: files of different kinds cannot be combined: {kinds}")
        kind = found.pop()
    if kind != "eht" and len(paths) > 1:
        raise ValueError(f"data: only EHT files can be combined; give one {kind} file")
    return kind
