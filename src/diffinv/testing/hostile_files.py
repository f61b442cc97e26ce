"""Every reader on empty, text, truncated, damaged and wrong-kind files (see
:mod:`diffinv.testing.hostile`): each must raise an error naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..io import FileFormatError
from .hostile import Case

__all__ = ["file_cases", "posterior_file"]


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# -- files -------------------------------------------------------------------------------------
def posterior_file(t: Path, nan: bool = False) -> Path:
    from ..posterior import Posterior

    s = torch.randn(4, 1, 3, 3, generator=_gen())
    if nan:
        s[1, 0, 1, 1] = float("nan")
    return Posterior(s, diagnostics={}, metadata={}).save(t / "posterior.h5")


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def _zero_block(path: Path, at: float = 0.5, size: int = 4096) -> Path:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = bytes(min(size, len(data) - start))
    out = path.with_name("zeroed-" + path.name)
    out.write_bytes(bytes(data))
    return out


def _empty(t: Path, name: str) -> Path:
    p = t / name
    p.write_bytes(b"")
    return p


def _text(t: Path, name: str) -> Path:
    p = t / name
    p.write_text("this is not a data file\n")
    return p


def _nan_written_posterior(t: Path) -> Path:
    import h5py

    path = posterior_file(t)
    with h5py.File(path, "r+") as f:
        s = f["samples"][...]
        s[0, 0, 0, 0] = np.nan
        f["samples"][...] = s
    return path


def _data_exchange(t: Path) -> Path:
    import h5py

    p = t / "scan.h5"
    with h5py.File(p, "w") as f:
        f["exchange/data"] = np.full((6, 2, 8), 500.0, dtype=np.float32)
        f["exchange/data_white"] = np.full((2, 2, 8), 1000.0, dtype=np.float32)
        f["exchange/data_dark"] = np.zeros((2, 2, 8), dtype=np.float32)
        f["exchange/theta"] = np.linspace(0.0, 180.0, 6, endpoint=False)
    return p


def _fastmri(t: Path) -> Path:
    from ..datasets.mri_io import write_fastmri

    k = torch.randn(2, 2, 16, 16, dtype=torch.complex64, generator=_gen())
    return write_fastmri(t / "file.h5", k)


def _cfl(t: Path) -> Path:
    from ..datasets.mri_io import write_cfl

    return write_cfl(t / "arr", torch.randn(2, 8, 8, dtype=torch.complex64, generator=_gen()))


def _fits(t: Path) -> Path:
    from ..datasets.fits_image import write_fits_image

    p = t / "img.fits"
    write_fits_image(p, torch.rand(1, 16, 16, generator=_gen()), fov_uas=100.0)
    return p


def _checkpoint(t: Path) -> Path:
    import shutil
    from importlib import resources

    src = resources.files("diffinv.priors") / "checkpoints" / "ct-phantom.pt"
    with resources.as_file(src) as p:
        return Path(shutil.copy(p, t / "prior.pt"))


def file_cases() -> list[Case]:
    from ..datasets.data_exchange import read_data_exchange
    from ..datasets.fits_image import read_fits_image
    from ..datasets.mri_io import load_kspace, read_cfl, read_fastmri_slice, read_npy_slice
    from ..operators.interferometry.uvfits import read_uvfits
    from ..posterior import load_posterior
    from ..priors.checkpoints import load_prior

    readers = {
        "posterior": (load_posterior, posterior_file, "posterior.h5"),
        "Data Exchange": (read_data_exchange, _data_exchange, "scan.h5"),
        "fastMRI": (lambda p: read_fastmri_slice(p, 0), _fastmri, "file.h5"),
        "FITS image": (read_fits_image, _fits, "img.fits"),
        "checkpoint": (load_prior, _checkpoint, "prior.pt"),
        "UVFITS": (read_uvfits, _fits, "img.fits"),  # a FITS image is the wrong kind
    }
    err = FileFormatError
    cases = []
    for kind, (read, make, fname) in readers.items():
        cases += [
            Case(f"{kind}: empty file", lambda t, r=read, n=fname: r(_empty(t, n)), err,
                 r"{tmp}"),
            Case(f"{kind}: text file", lambda t, r=read, n=fname: r(_text(t, n)), err, r"{tmp}"),
            Case(f"{kind}: truncated file", lambda t, r=read, m=make: r(_truncate(m(t))), err,
                 r"{tmp}"),
        ]
    cases += [
        Case("posterior: NaN samples", lambda t: load_posterior(_nan_written_posterior(t)), err,
             r"{tmp}.*NaN"),
        Case("posterior: saved NaN samples", lambda t: load_posterior(posterior_file(t, True)),
             err, r"{tmp}.*NaN"),
        Case("posterior: a Data Exchange file", lambda t: load_posterior(_data_exchange(t)), err,
             r"{tmp}"),
        Case("Data Exchange: a posterior file", lambda t: read_data_exchange(posterior_file(t)),
             err, r"{tmp}"),
        Case("fastMRI: a posterior file", lambda t: read_fastmri_slice(posterior_file(t), 0),
             ValueError, r"{tmp}"),
        Case("checkpoint: 4 KB zeroed", lambda t: load_prior(_zero_block(_checkpoint(t))), err,
             r"{tmp}"),
        Case("checkpoint: a posterior file", lambda t: load_prior(posterior_file(t)), err,
             r"{tmp}"),
        Case("BART: garbage header",
             lambda t: read_cfl((_cfl(t).with_suffix(".hdr").write_text("x y\n"), t / "arr")[1]),
             err, r"{tmp}"),
        Case("BART: truncated data", lambda t: read_cfl(_truncate_cfl(t)), ValueError,
             r"{tmp}.*bytes"),
        Case("NumPy k-space: empty file", lambda t: read_npy_slice(_empty(t, "k.npy")), err,
             r"{tmp}"),
        Case("k-space: unsupported suffix", lambda t: load_kspace(_text(t, "k.txt")), ValueError,
             r"^path: unsupported"),
        Case("missing posterior file", lambda t: load_posterior(t / "nope.h5"),
             FileNotFoundError, r"{tmp}"),
    ]
    return cases + _real_uvfits_cases()


def _real_uvfits_cases() -> list[Case]:
    """Truncated and zeroed copies of the real EHT UVFITS file, when the shared data exist."""
    from ..operators.interferometry.uvfits import read_uvfits

    env = os.environ.get("DIFFINV_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"
    files = sorted((root / "eht2017_m87").glob("*.uvfits"))
    if not files:
        return []
    real = files[0]

    def copy(t: Path) -> Path:
        p = t / real.name
        p.write_bytes(real.read_bytes())
        return p

    return [
        Case("UVFITS: truncated real file", lambda t: read_uvfits(_truncate(copy(t), 0.3)),
             FileFormatError, r"{tmp}"),
        Case("UVFITS: real file cut to its header", lambda t: read_uvfits(
            _truncate(copy(t), 0.002)), FileFormatError, r"{tmp}"),
    ]


def _truncate_cfl(t: Path) -> Path:
    base = _cfl(t)
    cfl = base.with_suffix(".cfl")
    cfl.write_bytes(cfl.read_bytes()[:100])
    return base


