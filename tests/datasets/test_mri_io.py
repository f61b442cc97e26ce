"""MRI readers/writers round-trip files written here; one-slice reads stay partial."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffinv.datasets.mri_io import (
    fastmri_num_slices,
    load_kspace,
    read_bart_kspace,
    read_cfl,
    read_fastmri_slice,
    read_npy_slice,
    write_bart_kspace,
    write_cfl,
    write_fastmri,
)
from diffinv.datasets.mri_phantoms import (
    mri_phantom,
    shepp_logan_ellipses,
    simulate_multicoil,
)
from diffinv.operators.mri import birdcage_maps, cartesian_mask, zero_filled_rss


def _kspace(slices=3, coils=4, h=10, w=8, seed=0):
    rng = np.random.default_rng(seed)
    shape = (slices, coils, h, w)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_fastmri_round_trip(tmp_path):
    k = _kspace()
    rss = np.abs(k).sum(1).astype(np.float32)
    path = tmp_path / "file1000.h5"
    write_fastmri(path, k, reconstruction_rss=rss,
                  attrs={"acquisition": "CORPD_FBK", "max": 3.5, "patient_id": "abc"},
                  ismrmrd_header="<ismrmrdHeader/>")
    assert fastmri_num_slices(path) == 3
    out = read_fastmri_slice(path, 1)
    np.testing.assert_array_equal(out["kspace"].numpy(), k[1])
    np.testing.assert_array_equal(out["reconstruction_rss"].numpy(), rss[1])
    assert out["attrs"] == {"acquisition": "CORPD_FBK", "max": 3.5, "patient_id": "abc"}
    assert out["ismrmrd_header"] == "<ismrmrdHeader/>"
    assert out["kspace"].dtype == torch.complex64
    np.testing.assert_array_equal(read_fastmri_slice(path, -1)["kspace"].numpy(), k[2])
    np.testing.assert_array_equal(load_kspace(path, 2).numpy(), k[2])
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_fastmri_reads_only_the_requested_slice(tmp_path, monkeypatch):
    import h5py

    k = _kspace(slices=5)
    path = tmp_path / "f.h5"
    write_fastmri(path, k)
    requested = []
    original = h5py.Dataset.__getitem__

    def spy(self, args):
        requested.append((self.name, args))
        return original(self, args)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    read_fastmri_slice(path, 3, keys=("kspace",))
    assert requested == [("/kspace", 3)]


def test_fastmri_single_coil_and_errors(tmp_path):
    k = _kspace()[:, 0]
    path = tmp_path / "sc.h5"
    write_fastmri(path, k)
    assert read_fastmri_slice(path, 0)["kspace"].shape == (1, 10, 8)
    with pytest.raises(ValueError, match="slice_index"):
        read_fastmri_slice(path, 3)
    with pytest.raises(FileNotFoundError, match="path"):
        read_fastmri_slice(tmp_path / "missing.h5", 0)
    with pytest.raises(ValueError, match="kspace"):
        write_fastmri(tmp_path / "bad.h5", np.full((1, 2, 2), np.nan, dtype=np.complex64))
    assert not (tmp_path / "bad.h5").exists()


def test_bart_round_trip_fortran_order(tmp_path):
    k = _kspace(slices=2, coils=3, h=5, w=4)
    base = tmp_path / "ksp"
    write_cfl(base, k)
    hdr = (tmp_path / "ksp.hdr").read_text().splitlines()
    assert hdr[0] == "# Dimensions" and hdr[1].split() == ["2", "3", "5", "4"]
    # column-major on disk: the first index varies fastest
    raw = np.fromfile(tmp_path / "ksp.cfl", dtype=np.complex64)
    assert raw[0] == k[0, 0, 0, 0] and raw[1] == k[1, 0, 0, 0]
    for name in ("ksp", "ksp.cfl", "ksp.hdr"):
        np.testing.assert_array_equal(np.asarray(read_cfl(tmp_path / name)), k)
    np.testing.assert_array_equal(read_cfl(base, mmap=False), k)
    # BART's layout: (2, 3, 5, 4) is READ, PHS1, PHS2 > 1 (3-D k-space), refused by name
    with pytest.raises(ValueError, match="ksp.*READ, PHS1, PHS2"):
        load_kspace(tmp_path / "ksp.cfl", 1)
    (tmp_path / "ksp.cfl").write_bytes(b"\x00" * 8)
    with pytest.raises(ValueError, match="bytes"):
        read_cfl(base)


def test_numpy_round_trip(tmp_path):
    k = _kspace()
    path = tmp_path / "k.npy"
    np.save(path, k)
    np.testing.assert_array_equal(read_npy_slice(path, 1), k[1])
    np.testing.assert_array_equal(read_npy_slice(path), k)
    np.testing.assert_array_equal(load_kspace(path, 0).numpy(), k[0])
    with pytest.raises(ValueError, match="unsupported"):
        load_kspace(tmp_path / "k.txt")


def test_phantom_properties():
    mag = shepp_logan_ellipses((64, 64))
    assert float(mag.max()) == pytest.approx(1.0) and float(mag.min()) == 0.0
    x = mri_phantom((64, 48), seed=1, max_phase=1.0)
    assert x.shape == (1, 1, 64, 48) and x.dtype == torch.complex64
    obj = x.abs() > 0.05
    assert float(torch.angle(x)[obj].abs().max()) <= 1.0 + 1e-6
    # smooth phase: neighbouring object pixels differ little
    ph = torch.angle(x[0, 0].to(torch.complex128))
    both = obj[0, 0, :, 1:] & obj[0, 0, :, :-1]
    assert float((ph[:, 1:] - ph[:, :-1])[both].abs().max()) < 0.1
    assert not torch.equal(mri_phantom(seed=1), mri_phantom(seed=2))


def test_simulate_multicoil_noise_level():
    x = mri_phantom((32, 32), dtype=torch.complex128)
    maps = birdcage_maps((32, 32), 4, dtype=torch.complex128)
    mask = cartesian_mask((32, 32), 4, 0.1, seed=0)
    g = torch.Generator().manual_seed(0)
    d = simulate_multicoil(x, maps, mask, sigma=0.05, generator=g)
    resid = (d.kspace - d.operator(x))[:, :, mask]
    assert abs(float(resid.real.std()) - 0.05) < 0.005
    chi2 = d.noise.chi2(d.kspace, d.operator(x))[0] / d.noise.n_data(d.kspace)
    assert float(chi2) == pytest.approx(1.0, abs=0.1)
    clean = simulate_multicoil(x, maps, mask)
    torch.testing.assert_close(clean.kspace, clean.operator(x))
    assert zero_filled_rss(clean.kspace).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("readout_inverted", [False, True])
def test_bart_kspace_layout_16d(tmp_path, readout_inverted):
    """A standard BART k-space file (coils in dimension 3, 16-D header) reads as (C, H, W)."""
    k = _kspace(slices=1, coils=8, h=18, w=23)[0]
    base = write_bart_kspace(tmp_path / "brain", k, readout_inverted=readout_inverted)
    dims = (tmp_path / "brain.hdr").read_text().splitlines()[1].split()
    assert len(dims) == 16
    assert dims[:4] == (["1", "18", "23", "8"] if readout_inverted else ["18", "23", "1", "8"])
    assert set(dims[4:]) == {"1"}
    # the raw file follows BART's Fortran order: READ fastest, then PHS1, PHS2, COIL
    raw = np.fromfile(tmp_path / "brain.cfl", dtype=np.complex64)
    assert raw[1] == k[0, 1, 0] and raw[18 * 23] == k[1, 0, 0]
    for name in (base, tmp_path / "brain.cfl", tmp_path / "brain.hdr"):
        np.testing.assert_array_equal(load_kspace(name).numpy(), k)


def test_bart_kspace_slices_and_refusals(tmp_path):
    k = _kspace(slices=3, coils=2, h=6, w=5)
    write_bart_kspace(tmp_path / "ms", k)
    assert (tmp_path / "ms.hdr").read_text().splitlines()[1].split()[13] == "3"
    np.testing.assert_array_equal(read_bart_kspace(tmp_path / "ms", 2).numpy(), k[2])
    with pytest.raises(ValueError, match="ms.*3 slices"):
        read_bart_kspace(tmp_path / "ms", 3)
    # a MAPS dimension > 1 (e.g. ESPIRiT maps, not k-space) is refused by name
    arr = np.zeros((6, 5, 1, 2, 2), dtype=np.complex64)
    write_cfl(tmp_path / "maps", arr)
    with pytest.raises(ValueError, match="maps.*MAPS=2"):
        load_kspace(tmp_path / "maps.cfl")
