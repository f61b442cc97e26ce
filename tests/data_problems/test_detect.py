"""Kind detection from file contents, and clear refusals naming the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from diffinv.data_problems import detect_kind, detect_kinds
from diffinv.datasets.fits_image import write_fits_image
from diffinv.datasets.mri_io import write_bart_kspace, write_fastmri


def test_detects_package_written_files(tmp_path):
    k = np.ones((2, 8, 8), dtype=np.complex64)
    write_bart_kspace(tmp_path / "k", k)
    write_fastmri(tmp_path / "fm.h5", k[None])
    np.save(tmp_path / "k.npy", k)
    with h5py.File(tmp_path / "ct.h5", "w") as f:
        f["exchange/data"] = np.ones((3, 1, 4))
    assert detect_kind(tmp_path / "k.cfl") == detect_kind(tmp_path / "k.hdr") == "mri"
    assert detect_kind(tmp_path / "fm.h5") == detect_kind(tmp_path / "k.npy") == "mri"
    assert detect_kind(tmp_path / "ct.h5") == "ct"
    assert detect_kinds([tmp_path / "ct.h5"], "ct") == "ct"


def test_refusals_name_the_file(tmp_path):
    import torch

    write_fits_image(tmp_path / "img.fits", torch.ones(4, 4), 100.0)
    with pytest.raises(ValueError, match="img.fits: a FITS file without random groups"):
        detect_kind(tmp_path / "img.fits")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: unrecognised file format"):
        detect_kind(tmp_path / "notes.txt")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["images"] = np.ones(3)
    with pytest.raises(ValueError, match=r"other.h5: HDF5 file with datasets \['images'\]"):
        detect_kind(tmp_path / "other.h5")
    (tmp_path / "cut.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ValueError, match="cut.h5: unreadable HDF5 file"):
        detect_kind(tmp_path / "cut.h5")
    with pytest.raises(FileNotFoundError, match="missing.uvfits: file does not exist"):
        detect_kind(tmp_path / "missing.uvfits")
    np.save(tmp_path / "k.npy", np.ones((2, 4, 4), dtype=np.complex64))
    with pytest.raises(ValueError, match="k.npy: holds mri data, not eht data"):
        detect_kinds([tmp_path / "k.npy"], "eht")
    with pytest.raises(ValueError, match="only EHT files can be combined"):
        detect_kinds([tmp_path / "k.npy", tmp_path / "k.npy"])
