"""MRI file readers and writers: fastMRI HDF5, BART ``.cfl/.hdr``, NumPy.

Reading one slice never loads the whole file: HDF5 datasets are sliced by h5py, BART and
``.npy`` files are memory-mapped.  Writers are atomic (temporary file, then rename).

fastMRI layout (Zbontar et al. 2018): ``kspace`` ``(slices, coils, H, W)`` complex64 for
multi-coil (``(slices, H, W)`` single-coil), optional ``reconstruction_rss`` /
``reconstruction_esc`` ``(slices, h, w)`` float32, root attributes such as ``acquisition``,
``max``, ``norm``, ``patient_id``, and an ``ismrmrd_header`` XML string dataset.
BART layout (Uecker et al., BART toolbox, ``src/misc/mri.h``): ``NAME.hdr`` holds
``# Dimensions`` and 16 sizes; ``NAME.cfl`` the complex64 values in column-major (Fortran)
order.  The dimensions mean READ (0), PHS1 (1), PHS2 (2), COIL (3), MAPS (4), TE (5),
COEFF (6), COEFF2 (7), ITER (8), CSHIFT (9), TIME (10), TIME2 (11), LEVEL (12), SLICE (13),
AVG (14), BATCH (15); a 2-D multi-coil scan is e.g. ``1 180 230 8 1 ...`` (readout already
inverse-transformed, two phase-encoding axes, 8 coils) or ``256 256 1 8 1 ...``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write, reader

__all__ = [
    "read_fastmri_slice",
    "fastmri_num_slices",
    "write_fastmri",
    "read_cfl",
    "write_cfl",
    "read_npy_slice",
    "read_bart_kspace",
    "write_bart_kspace",
    "BART_DIMS",
    "load_kspace",
]


def _existing(path: str | os.PathLike, name: str = "path") -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{name}: file {str(p)!r} does not exist")
    return p


# -- fastMRI HDF5 ----------------------------------------------------------------------------
@reader("fastMRI HDF5")
def fastmri_num_slices(path: str | os.PathLike) -> int:
    """Number of slices in a fastMRI file (reads only the shape)."""
    import h5py

    with h5py.File(_existing(path), "r") as f:
        if "kspace" not in f:
            raise ValueError(f"path: {str(path)!r} has no 'kspace' dataset (not fastMRI format)")
        return int(f["kspace"].shape[0])


@reader("fastMRI HDF5")
def read_fastmri_slice(
    path: str | os.PathLike,
    slice_index: int,
    keys: tuple[str, ...] = ("kspace", "reconstruction_rss"),
) -> dict[str, Any]:
    """Read one slice of a fastMRI HDF5 file.

    Parameters
    ----------
    path : path-like
    slice_index : int
        Slice to read (negative indices count from the end).
    keys : tuple of str
        Datasets to read; ``kspace`` is required, the others are returned when present.

    Returns
    -------
    dict
        ``kspace``: torch complex64 ``(coils, H, W)`` (``(1, H, W)`` for single-coil files);
        each other key present as a torch tensor; ``attrs``: the root attributes;
        ``ismrmrd_header``: the XML header string if stored; ``slice_index``, ``num_slices``.
    """
    import h5py

    with h5py.File(_existing(path), "r") as f:
        if "kspace" not in f:
            raise ValueError(f"path: {str(path)!r} has no 'kspace' dataset (not fastMRI format)")
        n = int(f["kspace"].shape[0])
        if not -n <= slice_index < n:
            raise ValueError(f"slice_index: expected -{n} <= index < {n}, got {slice_index}")
        idx = slice_index % n
        out: dict[str, Any] = {"slice_index": idx, "num_slices": n}
        for key in keys:
            if key not in f:
                if key == "kspace":
                    raise ValueError("keys: 'kspace' dataset missing")
                continue
            arr = np.asarray(f[key][idx])
            out[key] = torch.from_numpy(np.ascontiguousarray(arr))
        k = out["kspace"]
        if k.ndim == 2:
            out["kspace"] = k[None]
        out["kspace"] = out["kspace"].to(torch.complex64)
        out["attrs"] = {k: _plain(v) for k, v in f.attrs.items()}
        if "ismrmrd_header" in f:
            hdr = f["ismrmrd_header"][()]
            out["ismrmrd_header"] = hdr.decode() if isinstance(hdr, bytes) else str(hdr)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_fastmri(
    path: str | os.PathLike,
    kspace: torch.Tensor | np.ndarray,
    reconstruction_rss: torch.Tensor | np.ndarray | None = None,
    attrs: dict[str, Any] | None = None,
    ismrmrd_header: str | None = None,
) -> Path:
    """Write a fastMRI-layout HDF5 file atomically (``kspace`` ``(slices, coils, H, W)``)."""
    import h5py

    k = _numpy(kspace, "kspace").astype(np.complex64)
    if k.ndim not in (3, 4):
        raise ValueError(f"kspace: expected (slices, [coils,] H, W), got shape {k.shape}")

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("kspace", data=k, chunks=(1, *k.shape[1:]))
            if reconstruction_rss is not None:
                r = _numpy(reconstruction_rss, "reconstruction_rss").astype(np.float32)
                f.create_dataset("reconstruction_rss", data=r, chunks=(1, *r.shape[1:]))
            for key, val in (attrs or {}).items():
                f.attrs[key] = val
            if ismrmrd_header is not None:
                f.create_dataset("ismrmrd_header", data=ismrmrd_header.encode())

    return atomic_write(path, write, suffix=".h5")


def _numpy(a: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or Inf values")
    return arr


# -- BART ----------------------------------------------------------------------------------
def _bart_base(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".cfl", ".hdr") else p


@reader("BART .hdr/.cfl")
def read_cfl(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Read a BART array (``NAME``, ``NAME.cfl`` or ``NAME.hdr``) as complex64 NumPy.

    With ``mmap=True`` the data are memory-mapped, so indexing one slice reads only it.
    Trailing singleton dimensions are kept as written in the header.
    """
    base = _bart_base(path)
    hdr = _existing(base.with_suffix(".hdr"), "path")
    cfl = _existing(base.with_suffix(".cfl"), "path")
    lines = [ln for ln in hdr.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise ValueError(f"path: {str(hdr)!r} has no dimension line")
    dims = tuple(int(d) for d in lines[0].split())
    count = int(np.prod(dims))
    if cfl.stat().st_size != 8 * count:
        raise ValueError(
            f"path: {str(cfl)!r} holds {cfl.stat().st_size} bytes, expected {8 * count} for "
            f"dimensions {dims}"
        )
    if mmap:
        return np.memmap(cfl, dtype=np.complex64, mode="r", shape=dims, order="F")
    return np.fromfile(cfl, dtype=np.complex64, count=count).reshape(dims, order="F")


def write_cfl(path: str | os.PathLike, array: torch.Tensor | np.ndarray) -> Path:
    """Write a BART ``.hdr``/``.cfl`` pair (complex64, Fortran order), each atomically."""
    base = _bart_base(path)
    arr = _numpy(array, "array").astype(np.complex64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    dims = " ".join(str(d) for d in arr.shape)

    atomic_write(base.with_suffix(".cfl"),
                 lambda tmp: np.asfortranarray(arr).ravel(order="F").tofile(tmp), suffix=".cfl")
    atomic_write(base.with_suffix(".hdr"),
                 lambda tmp: Path(tmp).write_text(f"# Dimensions\n{dims}\n"), suffix=".hdr")
    return base


BART_DIMS = (
    "READ", "PHS1", "PHS2", "COIL", "MAPS", "TE", "COEFF", "COEFF2",
    "ITER", "CSHIFT", "TIME", "TIME2", "LEVEL", "SLICE", "AVG", "BATCH",
)  # fmt: skip
_COIL, _SLICE = 3, 13


def read_bart_kspace(path: str | os.PathLike, slice_index: int | None = 0) -> torch.Tensor:
    """Read a 2-D multi-coil BART k-space file as ``(coils, H, W)`` complex64.

    Parameters
    ----------
    path : path-like
        ``NAME``, ``NAME.cfl`` or ``NAME.hdr`` with BART's dimension order (see the module
        notes): coils in dimension 3; of READ, PHS1, PHS2 exactly two may exceed 1 and they
        become ``(H, W)`` in that order; several 2-D slices go in SLICE (dimension 13).
    slice_index : int or None
        Index along SLICE when it has more than one entry (None: refuse several slices).

    Raises
    ------
    ValueError
        Naming the file and the dimension when the array is 3-D k-space (all of READ, PHS1,
        PHS2 > 1), 1-D, or has other non-singleton dimensions (MAPS, TE, TIME, ...).
    """
    arr = read_cfl(path)
    name = str(_bart_base(path))
    dims = tuple(arr.shape) + (1,) * (len(BART_DIMS) - arr.ndim)
    if len(dims) > len(BART_DIMS):
        raise ValueError(f"path: {name!r} has {len(dims)} dimensions; BART arrays have 16")
    arr = arr.reshape(dims, order="F") if arr.ndim != len(dims) else arr
    extra = [f"{BART_DIMS[d]}={dims[d]}" for d in range(4, 16) if d != _SLICE and dims[d] > 1]
    if extra:
        raise ValueError(
            f"path: {name!r} has non-singleton BART dimensions {extra}; expected 2-D "
            "multi-coil k-space (READ/PHS1/PHS2, COIL and optionally SLICE only)"
        )
    spatial = [d for d in range(3) if dims[d] > 1]
    if len(spatial) != 2:
        raise ValueError(
            f"path: {name!r} has k-space dimensions READ, PHS1, PHS2 = {dims[:3]}; expected "
            "exactly two larger than 1 (2-D k-space; for 3-D data inverse-FFT the readout, "
            "e.g. `bart fft -iu 1`, and select one slice)"
        )
    index: list[Any] = [0] * len(BART_DIMS)
    index[spatial[0]] = index[spatial[1]] = index[_COIL] = slice(None)
    n_slices = dims[_SLICE]
    if n_slices > 1:
        if slice_index is None or not -n_slices <= slice_index < n_slices:
            raise ValueError(
                f"slice_index: {name!r} has {n_slices} slices (BART SLICE dimension); expected "
                f"-{n_slices} <= index < {n_slices}, got {slice_index}"
            )
        index[_SLICE] = slice_index % n_slices
    data = np.array(arr[tuple(index)], dtype=np.complex64)  # (H, W, coils)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(data, -1, 0)))


def write_bart_kspace(
    path: str | os.PathLike,
    kspace: torch.Tensor | np.ndarray,
    readout_inverted: bool = False,
) -> Path:
    """Write multi-coil k-space in BART's 16-D layout (atomic ``.cfl``/``.hdr``).

    Parameters
    ----------
    kspace : tensor or array
        ``(coils, H, W)`` or ``(slices, coils, H, W)`` complex.
    readout_inverted : bool
        False: ``H`` in READ and ``W`` in PHS1 (``H W 1 C``); True: READ is 1 and ``(H, W)``
        go in PHS1, PHS2 (``1 H W C``), as for slices taken from 3-D scans.

    Returns
    -------
    Path
        The base name (without suffix).
    """
    k = _numpy(kspace, "kspace").astype(np.complex64)
    if k.ndim == 3:
        k = k[None]
    if k.ndim != 4:
        raise ValueError(f"kspace: expected (coils, H, W) or (slices, coils, H, W), got {k.shape}")
    s, c, h, w = k.shape
    dims = [1] * len(BART_DIMS)
    dims[1 if readout_inverted else 0], dims[2 if readout_inverted else 1] = h, w
    dims[_COIL], dims[_SLICE] = c, s
    out = np.zeros(dims, dtype=np.complex64)
    index: list[Any] = [0] * len(BART_DIMS)
    index[1 if readout_inverted else 0] = index[2 if readout_inverted else 1] = slice(None)
    for j in range(s):
        index[_SLICE] = j
        index[_COIL] = slice(None)
        out[tuple(index)] = np.moveaxis(k[j], 0, -1)
    return write_cfl(path, out)


# -- NumPy -----------------------------------------------------------------------------------
@reader("NumPy .npy")
def read_npy_slice(path: str | os.PathLike, slice_index: int | None = None) -> np.ndarray:
    """Read a ``.npy`` array (memory-mapped) or one index along its first axis."""
    arr = np.load(_existing(path), mmap_mode="r")
    if slice_index is None:
        return np.array(arr)
    n = arr.shape[0]
    if not -n <= slice_index < n:
        raise ValueError(f"slice_index: expected -{n} <= index < {n}, got {slice_index}")
    return np.array(arr[slice_index])


@reader("k-space")
def load_kspace(path: str | os.PathLike, slice_index: int | None = 0) -> torch.Tensor:
    """Load multi-coil k-space ``(coils, H, W)`` complex64 from fastMRI, BART or NumPy files.

    For ``.h5`` files ``slice_index`` selects the fastMRI slice; BART files (``.cfl``/``.hdr``/
    no suffix) are read in BART's own layout by :func:`read_bart_kspace`; for ``.npy`` a 4-D
    ``(slices, coils, H, W)`` array is indexed along its first axis, a 3-D one is returned
    whole (``slice_index`` ignored).
    """
    p = Path(path)
    if p.suffix in (".h5", ".hdf5"):
        return read_fastmri_slice(p, 0 if slice_index is None else slice_index, keys=("kspace",))[
            "kspace"
        ]
    if p.suffix == ".npy":
        arr = np.load(_existing(p), mmap_mode="r")
        data = arr[slice_index] if arr.ndim == 4 and slice_index is not None else arr
    elif p.suffix in (".cfl", ".hdr", ""):
        return read_bart_kspace(p, slice_index)
    else:
        raise ValueError(
            f"path: unsupported k-space file type {p.suffix!r}; expected .h5, .cfl, .npy"
        )
    out = torch.from_numpy(np.array(data, dtype=np.complex64))
    if out.ndim == 2:
        out = out[None]
    if out.ndim != 3:
        raise ValueError(f"path: expected k-space of shape (coils, H, W), got {tuple(out.shape)}")
    return out
